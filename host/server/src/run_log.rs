//! The one place a run's events are emitted, numbered and fanned out.
//!
//! The order rules are enforced by types, not by discipline:
//! - a [`RunLog`] starts as an [`UnstartedRun`], whose only emitting method is
//!   [`UnstartedRun::start`], which appends `agent_started` (seq 1);
//! - `start` returns [`RunEvents`] (progress, shared with the agent's host) and
//!   one [`RunEnd`], the only way to emit a terminal event; `RunEnd` is not
//!   `Clone` and its methods take `self`, so there is exactly one terminal
//!   event, and the log refuses anything after it;
//! - a tool call is a [`ToolSpan`]: `tool_executing` when it is created,
//!   `tool_completed` when it is finished or dropped (a cancelled run drops it),
//!   so every `tool_completed` follows its `tool_executing`;
//! - dropping a `RunEnd` without using it (a panic in the run task) emits
//!   `agent_error {code: "internal"}`.
//!
//! Events are serialized once and sent as shared frames to every subscriber.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::ids;
use crate::protocol::{EventKind, Outcome, RunEvent, ToolFailure, Usage, timestamp};

/// One serialized frame, shared by every subscriber that receives it.
pub type Frame = Arc<str>;

/// A session's outgoing queue. Full means the client reads too slowly: the
/// session is told through `overflow` and closes with 1013.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Frame>,
    overflow: CancellationToken,
}

impl Outbox {
    /// A queue of `capacity` frames and its receiving end.
    pub fn new(capacity: usize) -> (Self, mpsc::Receiver<Frame>, CancellationToken) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let overflow = CancellationToken::new();
        (
            Self {
                tx,
                overflow: overflow.clone(),
            },
            rx,
            overflow,
        )
    }

    /// Queues a frame; false if the session is gone or has overflowed.
    pub fn push(&self, frame: Frame) -> bool {
        match self.tx.try_send(frame) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.overflow.cancel();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// The event log of one run, with its live subscribers.
pub struct RunLog {
    run_id: String,
    thread_id: String,
    parent_run_id: Option<String>,
    state: Mutex<LogState>,
}

#[derive(Default)]
struct LogState {
    seq: u64,
    closed: bool,
    frames: Vec<Frame>,
    subscribers: Vec<Outbox>,
    /// The answer streamed so far (the concatenated deltas).
    streamed: String,
}

/// A run whose log exists but which has not emitted anything yet.
pub struct UnstartedRun {
    log: Arc<RunLog>,
}

impl RunLog {
    /// A new, empty log. Only `start` on the result can emit into it.
    pub fn create(
        run_id: String,
        thread_id: String,
        parent_run_id: Option<String>,
    ) -> UnstartedRun {
        UnstartedRun {
            log: Arc::new(RunLog {
                run_id,
                thread_id,
                parent_run_id,
                state: Mutex::new(LogState::default()),
            }),
        }
    }

    /// The run's id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The run's thread.
    pub fn thread_id(&self) -> &str {
        &self.thread_id
    }

    /// Sends every event after `after_seq` to `outbox`, then every later event
    /// as it happens. Returns false if the outbox overflowed on the backlog.
    pub fn subscribe(&self, outbox: Outbox, after_seq: u64) -> bool {
        let mut state = self.lock();
        let start = usize::try_from(after_seq)
            .unwrap_or(usize::MAX)
            .min(state.frames.len());
        for frame in &state.frames[start..] {
            if !outbox.push(frame.clone()) {
                return false;
            }
        }
        if !state.closed {
            state.subscribers.push(outbox);
        }
        true
    }

    /// Whether the terminal event has been emitted.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    fn lock(&self) -> MutexGuard<'_, LogState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn append(&self, kind: EventKind) {
        let mut state = self.lock();
        if state.closed {
            // Unreachable through the public types; kept as a last defence.
            tracing::error!(run_id = %self.run_id, ?kind, "event after the terminal event dropped");
            return;
        }
        state.seq += 1;
        if let EventKind::MessageDelta { text } = &kind {
            state.streamed.push_str(text);
        }
        let event = RunEvent {
            run_id: &self.run_id,
            thread_id: &self.thread_id,
            seq: state.seq,
            ts: timestamp(),
            parent_run_id: self.parent_run_id.as_deref(),
            kind: &kind,
        };
        let frame: Frame = match serde_json::to_string(&event) {
            Ok(text) => text.into(),
            Err(err) => {
                tracing::error!(run_id = %self.run_id, "cannot serialize event: {err}");
                return;
            }
        };
        state.frames.push(frame.clone());
        state
            .subscribers
            .retain(|outbox| outbox.push(frame.clone()));
        if kind.is_terminal() {
            state.closed = true;
            state.subscribers.clear();
        }
    }
}

impl UnstartedRun {
    /// The log, for subscribing before the run starts.
    pub fn log(&self) -> &Arc<RunLog> {
        &self.log
    }

    /// Emits `agent_started` and hands out the run's emitting capabilities.
    pub fn start(self, agent: String, version: String) -> (RunEvents, RunEnd) {
        self.log.append(EventKind::AgentStarted { agent, version });
        (
            RunEvents {
                log: self.log.clone(),
            },
            RunEnd {
                log: self.log,
                done: false,
            },
        )
    }
}

/// Progress events of a started run. Cloned into the agent's host.
#[derive(Clone)]
pub struct RunEvents {
    log: Arc<RunLog>,
}

impl RunEvents {
    /// `agent_thinking`.
    pub fn thinking(&self, text: String) {
        self.log.append(EventKind::AgentThinking { text });
    }

    /// `message_delta`.
    pub fn message_delta(&self, text: String) {
        self.log.append(EventKind::MessageDelta { text });
    }

    /// Emits `tool_executing` and returns the span that will emit its
    /// `tool_completed`.
    pub fn tool_call(&self, tool: &str, arguments: &str) -> ToolSpan {
        let tool_call_id = ids::tool_call_id();
        let arguments = serde_json::from_str(arguments)
            .unwrap_or_else(|_| Value::String(arguments.to_string()));
        self.log.append(EventKind::ToolExecuting {
            tool_call_id: tool_call_id.clone(),
            tool: tool.to_string(),
            arguments,
        });
        ToolSpan {
            log: self.log.clone(),
            tool_call_id,
            tool: tool.to_string(),
            started: Instant::now(),
            done: false,
        }
    }

    /// The run's log.
    pub fn log(&self) -> &Arc<RunLog> {
        &self.log
    }
}

/// A tool call in progress.
pub struct ToolSpan {
    log: Arc<RunLog>,
    tool_call_id: String,
    tool: String,
    started: Instant,
    done: bool,
}

impl ToolSpan {
    /// Emits `tool_completed` with the call's result.
    pub fn finish(mut self, result: Result<&str, ToolFailure>) {
        let (ok, error) = match result {
            Ok(json) => (
                Some(serde_json::from_str(json).unwrap_or_else(|_| Value::String(json.into()))),
                None,
            ),
            Err(failure) => (None, Some(failure)),
        };
        self.emit(ok, error);
    }

    fn emit(&mut self, ok: Option<Value>, error: Option<ToolFailure>) {
        self.done = true;
        self.log.append(EventKind::ToolCompleted {
            tool_call_id: std::mem::take(&mut self.tool_call_id),
            tool: std::mem::take(&mut self.tool),
            ok,
            error,
            duration_ms: self.started.elapsed().as_secs_f64() * 1e3,
        });
    }
}

impl Drop for ToolSpan {
    fn drop(&mut self) {
        if !self.done {
            let failure = ToolFailure {
                code: "cancelled".into(),
                message: "the run was cancelled during the call".into(),
            };
            self.emit(None, Some(failure));
        }
    }
}

/// The capability to end a run: exactly one terminal event.
pub struct RunEnd {
    log: Arc<RunLog>,
    done: bool,
}

impl RunEnd {
    /// `agent_completed {outcome: completed}`.
    pub fn completed(mut self, output: String, usage: Option<Usage>) {
        self.end(EventKind::AgentCompleted {
            output,
            outcome: Outcome::Completed,
            usage,
        });
    }

    /// `agent_completed {outcome: cancelled}` with what was streamed so far.
    pub fn cancelled(mut self, usage: Option<Usage>) {
        let output = std::mem::take(&mut self.log.lock().streamed);
        self.end(EventKind::AgentCompleted {
            output,
            outcome: Outcome::Cancelled,
            usage,
        });
    }

    /// `agent_error`.
    pub fn failed(mut self, code: &str, message: String, retryable: bool) {
        self.end(EventKind::AgentError {
            code: code.to_string(),
            message,
            retryable,
        });
    }

    fn end(&mut self, kind: EventKind) {
        self.done = true;
        self.log.append(kind);
    }
}

impl Drop for RunEnd {
    fn drop(&mut self) {
        if !self.done {
            self.end(EventKind::AgentError {
                code: "internal".into(),
                message: "the run ended without a result (host error)".into(),
                retryable: true,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(rx: &mut mpsc::Receiver<Frame>) -> Vec<Value> {
        let mut out = Vec::new();
        while let Ok(frame) = rx.try_recv() {
            out.push(serde_json::from_str(&frame).unwrap());
        }
        out
    }

    #[test]
    fn events_are_numbered_and_end_once() {
        let run = RunLog::create("run_1".into(), "thr_1".into(), None);
        let (outbox, mut rx, _) = Outbox::new(64);
        run.log().subscribe(outbox, 0);
        let (events, end) = run.start("helper".into(), "1".into());
        events.thinking("hm".into());
        let span = events.tool_call("calculate", r#"{"expression":"1+1"}"#);
        span.finish(Ok("2"));
        events.message_delta("2".into());
        end.completed("2".into(), None);
        events.thinking("too late".into());
        let got = frames(&mut rx);
        let types: Vec<_> = got
            .iter()
            .map(|f| f["type"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            types,
            [
                "agent_started",
                "agent_thinking",
                "tool_executing",
                "tool_completed",
                "message_delta",
                "agent_completed"
            ]
        );
        let seqs: Vec<_> = got.iter().map(|f| f["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
        assert_eq!(got[3]["ok"], 2);
        assert_eq!(got[2]["tool_call_id"], got[3]["tool_call_id"]);
    }

    #[test]
    fn dropped_spans_and_ends_still_close_the_run() {
        let run = RunLog::create("run_1".into(), "thr_1".into(), None);
        let log = run.log().clone();
        let (events, end) = run.start("a".into(), "1".into());
        events.message_delta("part".into());
        drop(events.tool_call("slow", "{}"));
        end.cancelled(None);
        let (outbox, mut rx, _) = Outbox::new(64);
        log.subscribe(outbox, 2);
        let got = frames(&mut rx);
        assert_eq!(got.len(), 3, "{got:#?}");
        assert_eq!(got[0]["type"], "tool_executing");
        assert_eq!(got[1]["type"], "tool_completed");
        assert_eq!(got[1]["error"]["code"], "cancelled");
        assert_eq!(got[2]["type"], "agent_completed");
        assert_eq!(got[2]["outcome"], "cancelled");
        assert_eq!(got[2]["output"], "part");
        assert!(log.is_closed());

        let run = RunLog::create("run_2".into(), "thr_1".into(), None);
        let log = run.log().clone();
        drop(run.start("a".into(), "1".into()));
        let (outbox, mut rx, _) = Outbox::new(64);
        log.subscribe(outbox, 0);
        let got = frames(&mut rx);
        assert_eq!(got.last().unwrap()["type"], "agent_error");
        assert_eq!(got.last().unwrap()["code"], "internal");
    }

    #[test]
    fn a_full_outbox_signals_overflow() {
        let run = RunLog::create("run_1".into(), "thr_1".into(), None);
        let (outbox, _rx, overflow) = Outbox::new(2);
        run.log().subscribe(outbox, 0);
        let (events, _end) = run.start("a".into(), "1".into());
        events.thinking("1".into());
        assert!(!overflow.is_cancelled());
        events.thinking("2".into());
        assert!(overflow.is_cancelled());
    }
}
