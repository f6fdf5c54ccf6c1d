//! The one place a run's events are emitted, numbered, made durable and fanned out.
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
//! Durability: an event is numbered and handed to the [`Store`] under one
//! lock, so the store receives a run's events in seq order; the store's
//! `on_durable` callback, which runs after the commit and in submission order,
//! is what appends the frame to the log's list and sends it to subscribers.
//! So a client only ever sees committed events, in order, and a subscriber
//! registered under the same lock that reads the list sees neither a gap nor
//! a duplicate. The terminal event is written together with the messages the
//! run adds to its thread and the run's end status, in one atomic write.
//!
//! If the store fails an event, the run's subscribers get `agent_error {code:
//! "store_unavailable"}` with that event's seq in its place, the host tries to
//! record that same end (so a store that recovers holds what clients saw,
//! without a gap), nothing more of the run is written, and the run is
//! cancelled. If even that write fails, the run stays `running` in the store
//! and crash recovery closes it at the next start.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use netra_runtime::{CallObserver, LogLevel};
use netra_store::{EventRecord, NewMessage, Role, RunStatus, Store, StoreError};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::ids;
use crate::protocol::{Code, EventKind, Outcome, RunEvent, ToolFailure, Usage, timestamp_of};
use netra_runtime::rate::{Bucket, ByteRate};

/// One serialized frame, shared by every subscriber that receives it.
pub type Frame = Arc<str>;

/// How long a replay waits for room in a session's queue before it counts
/// the client as a slow consumer.
const REPLAY_SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// A backlog at most this long is queued at once when a subscriber switches
/// to live delivery; longer backlogs are replayed with backpressure first.
const LIVE_SWITCH_BACKLOG: usize = 64;

/// A session's outgoing queue, bounded in frames and in bytes. Full means
/// the client reads too slowly: the session is told through `overflow` and
/// closes with 1013.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Frame>,
    overflow: CancellationToken,
    queued: Arc<AtomicUsize>,
    max_bytes: usize,
}

/// The receiving end of an [`Outbox`].
pub struct Inbox {
    rx: mpsc::Receiver<Frame>,
    queued: Arc<AtomicUsize>,
}

impl Inbox {
    /// The next frame; `None` once every outbox is gone.
    pub async fn recv(&mut self) -> Option<Frame> {
        let frame = self.rx.recv().await?;
        self.queued.fetch_sub(frame.len(), Ordering::AcqRel);
        Some(frame)
    }

    /// The next frame if one is queued.
    pub fn try_recv(&mut self) -> Option<Frame> {
        let frame = self.rx.try_recv().ok()?;
        self.queued.fetch_sub(frame.len(), Ordering::AcqRel);
        Some(frame)
    }
}

impl Outbox {
    /// A queue of `capacity` frames and 64 MiB, and its receiving end.
    pub fn new(capacity: usize) -> (Self, Inbox, CancellationToken) {
        Self::bounded(capacity, 64 << 20)
    }

    /// A queue of `capacity` frames and `max_bytes` bytes, and its receiving
    /// end. One frame larger than `max_bytes` still fits an empty queue.
    pub fn bounded(capacity: usize, max_bytes: usize) -> (Self, Inbox, CancellationToken) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let overflow = CancellationToken::new();
        let queued = Arc::new(AtomicUsize::new(0));
        (
            Self {
                tx,
                overflow: overflow.clone(),
                queued: queued.clone(),
                max_bytes,
            },
            Inbox { rx, queued },
            overflow,
        )
    }

    /// Counts `len` more bytes queued; false (and nothing counted) if they
    /// do not fit.
    fn reserve(&self, len: usize) -> bool {
        let before = self.queued.fetch_add(len, Ordering::AcqRel);
        if before > 0 && before + len > self.max_bytes {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Queues a frame without waiting; false if the session is gone or has
    /// overflowed.
    pub fn push(&self, frame: Frame) -> bool {
        let len = frame.len();
        if !self.reserve(len) {
            self.overflow.cancel();
            return false;
        }
        match self.tx.try_send(frame) {
            Ok(()) => true,
            Err(err) => {
                self.queued.fetch_sub(len, Ordering::AcqRel);
                if let mpsc::error::TrySendError::Full(_) = err {
                    self.overflow.cancel();
                }
                false
            }
        }
    }

    /// Queues a frame, waiting for room (a replay of a long log); false if
    /// the session is gone, or overflowed after waiting too long.
    pub async fn send(&self, frame: Frame) -> bool {
        let len = frame.len();
        let wait = async {
            // Room in bytes first, then a slot in the channel.
            while !self.reserve(len) {
                if self.tx.is_closed() {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            if self.tx.send(frame).await.is_ok() {
                true
            } else {
                self.queued.fetch_sub(len, Ordering::AcqRel);
                false
            }
        };
        match tokio::time::timeout(REPLAY_SEND_TIMEOUT, wait).await {
            Ok(sent) => sent,
            Err(_) => {
                self.overflow.cancel();
                false
            }
        }
    }
}

/// What one run may write into its log besides its start and its end:
/// the terminal event is never refused, so every run can end.
#[derive(Clone, Copy, Debug)]
pub struct EventBudget {
    /// Events.
    pub max_events: u64,
    /// Bytes they take in the store ([`Store::event_cost`] of each frame).
    pub max_bytes: u64,
}

impl Default for EventBudget {
    fn default() -> Self {
        let budgets = netra_config::Budgets::default();
        Self {
            max_events: budgets.max_events,
            max_bytes: budgets.max_event_bytes,
        }
    }
}

/// An event the run's budget refused; the run must end with `code`.
#[derive(Debug)]
pub struct Overspent {
    /// The `agent_error` code.
    pub code: Code,
    /// What was spent, for the client.
    pub message: String,
}

/// What one user's runs put into the store: their events waiting for it,
/// and the rate at which they may add more. The store has one writer and one
/// queue for everybody: bounding what each user may have in it bounds how
/// long anyone else's event waits behind theirs, and the rate bounds the
/// share of the host's work (writer, checkpoints, delivery) one user's
/// events take, however many runs they flood with.
pub struct Backlog {
    in_flight: AtomicUsize,
    /// Woken when `in_flight` drops.
    drained: tokio::sync::Notify,
    /// The user's event bytes, charged as they are submitted; `None` is
    /// unlimited.
    rate: Option<Mutex<Bucket>>,
}

impl Default for Backlog {
    /// Unlimited in rate.
    fn default() -> Self {
        Self::new(None)
    }
}

/// What an event is charged against its user's rate besides its bytes in
/// the store: the work of handling one event whatever its size (a commit's
/// share, the callback, the delivery to each session).
pub const EVENT_RATE_OVERHEAD: u64 = 256;

impl Backlog {
    /// A user's backlog, their events limited to `rate` if given.
    pub fn new(rate: Option<ByteRate>) -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            drained: tokio::sync::Notify::new(),
            rate: rate.map(|rate| Mutex::new(Bucket::new(rate, Instant::now()))),
        }
    }

    fn bucket(&self) -> Option<std::sync::MutexGuard<'_, Bucket>> {
        self.rate
            .as_ref()
            .map(|bucket| bucket.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Counts an event of `cost` bytes in the store as waiting for it, and
    /// charges it to the user's rate.
    pub(crate) fn add(&self, cost: u64) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        if let Some(mut bucket) = self.bucket() {
            bucket.charge(cost + EVENT_RATE_OVERHEAD, Instant::now());
        }
    }

    /// An event counted with `add` is in the store.
    pub(crate) fn done(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.drained.notify_waiters();
    }

    /// When forgetting this backlog loses nothing: its rate's bucket is full
    /// again (`None` if it has no rate).
    pub fn forgettable_at(&self) -> Option<Instant> {
        self.bucket()
            .map(|mut bucket| bucket.full_at(Instant::now()))
    }

    /// Waits until fewer than `max` events are in flight and the user's
    /// rate has no debt.
    async fn below(&self, max: usize) {
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if self.in_flight.load(Ordering::Acquire) < max {
                break;
            }
            drained.await;
        }
        loop {
            let debt = self
                .bucket()
                .and_then(|mut bucket| bucket.debt(Instant::now()));
            match debt {
                Some(wait) => tokio::time::sleep(wait).await,
                None => return,
            }
        }
    }
}

/// Runs once, after the run's terminal event has been handled by the store.
pub type OnClosed = Box<dyn FnOnce() + Send>;

/// The event log of one run, with its live subscribers.
pub struct RunLog {
    run_id: String,
    thread_id: String,
    parent_run_id: Option<String>,
    /// The user's message, which the run adds to its thread when it ends.
    input: String,
    store: Arc<dyn Store>,
    /// Cancelled when the store fails the run's writes.
    abort: CancellationToken,
    budget: EventBudget,
    /// Set when the store failed an event: nothing more is written.
    halted: AtomicBool,
    /// Its user's events handed to the store and not yet committed, this
    /// run's and every other run's of the user.
    user_backlog: Arc<Backlog>,
    /// Held while an event is numbered and handed to the store.
    submit: Mutex<Submit>,
    /// What is committed, and who follows it.
    durable: Mutex<Durable>,
    on_closed: Mutex<Option<OnClosed>>,
}

#[derive(Default)]
struct Submit {
    seq: u64,
    closed: bool,
    /// What the events submitted so far take in the store.
    bytes: u64,
    /// The answer streamed so far (the concatenated deltas).
    streamed: String,
}

#[derive(Default)]
struct Durable {
    /// The committed frames; `frames[i]` has seq `i + 1`.
    frames: Vec<Frame>,
    /// Live subscribers, each with the last seq it already has.
    subscribers: Vec<(Outbox, u64)>,
    /// No more frames will be delivered (the terminal one was, or the store failed).
    closed: bool,
}

/// What a new run's log needs.
pub struct RunLogSpec {
    /// The run.
    pub run_id: String,
    /// Its thread.
    pub thread_id: String,
    /// The run that started it, for a nested run.
    pub parent_run_id: Option<String>,
    /// The user's message.
    pub input: String,
    /// Where its events go.
    pub store: Arc<dyn Store>,
    /// Cancelled if the store fails one of its writes.
    pub abort: CancellationToken,
    /// What its events may spend.
    pub budget: EventBudget,
    /// The events of its user's runs waiting for the store.
    pub user_backlog: Arc<Backlog>,
}

/// A run whose log exists but which has not emitted anything yet.
pub struct UnstartedRun {
    log: Arc<RunLog>,
}

impl RunLog {
    /// A new, empty log. Only `start` on the result can emit into it.
    pub fn create(spec: RunLogSpec) -> UnstartedRun {
        UnstartedRun {
            log: Arc::new(RunLog {
                run_id: spec.run_id,
                thread_id: spec.thread_id,
                parent_run_id: spec.parent_run_id,
                input: spec.input,
                store: spec.store,
                abort: spec.abort,
                budget: spec.budget,
                halted: AtomicBool::new(false),
                user_backlog: spec.user_backlog,
                submit: Mutex::new(Submit::default()),
                durable: Mutex::new(Durable::default()),
                on_closed: Mutex::new(None),
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

    /// The queues following the run now (a nested run's events go to them too).
    pub fn followers(&self) -> Vec<Outbox> {
        self.durable()
            .subscribers
            .iter()
            .map(|(outbox, _)| outbox.clone())
            .collect()
    }

    /// Sets what runs once the terminal event has been stored (or failed).
    pub fn on_closed(&self, hook: OnClosed) {
        *self
            .on_closed
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(hook);
    }

    /// Sends every committed event after `after_seq` to `outbox`, then every
    /// later one as it commits. A long backlog is sent with backpressure
    /// before switching to live delivery under the log's lock, so there is
    /// no gap and no duplicate at the switch. Returns false if the session
    /// went away or could not keep up.
    pub async fn follow(&self, outbox: Outbox, after_seq: u64) -> bool {
        let mut cursor = after_seq;
        loop {
            let chunk: Vec<Frame> = {
                let mut durable = self.durable();
                let start = usize::try_from(cursor)
                    .unwrap_or(usize::MAX)
                    .min(durable.frames.len());
                let backlog = &durable.frames[start..];
                if backlog.len() <= LIVE_SWITCH_BACKLOG {
                    for frame in backlog {
                        if !outbox.push(frame.clone()) {
                            return false;
                        }
                    }
                    if !durable.closed {
                        durable.subscribers.push((outbox, cursor));
                    }
                    return true;
                }
                backlog
                    .iter()
                    .take(LIVE_SWITCH_BACKLOG * 4)
                    .cloned()
                    .collect()
            };
            for frame in chunk {
                if !outbox.send(frame).await {
                    return false;
                }
                cursor += 1;
            }
        }
    }

    /// Subscribes `outbox` from the first event, before the run starts.
    fn subscribe_from_start(&self, outbox: Outbox) {
        self.durable().subscribers.push((outbox, 0));
    }

    /// Whether no more events will be delivered.
    pub fn is_closed(&self) -> bool {
        self.durable().closed
    }

    /// Ends delivery at once without a terminal event: the run could not be
    /// recorded, and the client was told so in another way.
    pub fn abandon(&self) {
        let mut durable = self.durable();
        durable.closed = true;
        durable.subscribers.clear();
        drop(durable);
        self.abort.cancel();
    }

    fn durable(&self) -> MutexGuard<'_, Durable> {
        self.durable.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn submit(&self) -> MutexGuard<'_, Submit> {
        self.submit.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn frame(&self, seq: u64, at: SystemTime, kind: &EventKind) -> Option<Frame> {
        let event = RunEvent {
            run_id: Cow::Borrowed(&self.run_id),
            thread_id: Cow::Borrowed(&self.thread_id),
            seq,
            ts: timestamp_of(at),
            parent_run_id: self.parent_run_id.as_deref().map(Cow::Borrowed),
            kind: Cow::Borrowed(kind),
        };
        match serde_json::to_string(&event) {
            Ok(text) => Some(text.into()),
            Err(err) => {
                tracing::error!(run_id = %self.run_id, "cannot serialize event: {err}");
                None
            }
        }
    }

    /// Appends an event. An event over the run's budget is refused (and not
    /// written) unless it must be written: the start, the end, and the
    /// `tool_completed` of a `tool_executing` already written.
    fn append(self: &Arc<Self>, kind: EventKind) -> Result<(), Overspent> {
        let mut submit = self.submit();
        if submit.closed {
            // Unreachable through the public types; kept as a last defence.
            tracing::error!(run_id = %self.run_id, ?kind, "event after the terminal event dropped");
            return Ok(());
        }
        let terminal = kind.is_terminal();
        if self.halted.load(Ordering::Acquire) {
            // The store failed an earlier event and the run was ended in its
            // place; nothing more is written, but the slot is still released.
            if terminal {
                submit.closed = true;
                drop(submit);
                self.closed();
            }
            return Ok(());
        }
        let at = SystemTime::now();
        let seq = submit.seq + 1;
        let Some(frame) = self.frame(seq, at, &kind) else {
            return Ok(());
        };
        let cost = self.store.event_cost(frame.len());
        let bytes = submit.bytes + cost;
        let must = terminal
            || matches!(
                kind,
                EventKind::AgentStarted { .. } | EventKind::ToolCompleted { .. }
            );
        if !must {
            // Counted without the start, so the numbers mean what they say.
            if seq > self.budget.max_events + 1 {
                return Err(Overspent {
                    code: Code::BudgetEvents,
                    message: format!(
                        "the run emitted more than {} events (limits.max_events)",
                        self.budget.max_events
                    ),
                });
            }
            if bytes > self.budget.max_bytes {
                return Err(Overspent {
                    code: Code::BudgetEventBytes,
                    message: format!(
                        "the run's events would take more than {} bytes in the store (limits.max_event_bytes)",
                        self.budget.max_bytes
                    ),
                });
            }
        }
        if let EventKind::MessageDelta { text } = &kind {
            submit.streamed.push_str(text);
        }
        submit.seq = seq;
        submit.bytes = bytes;
        let record = EventRecord {
            run_id: self.run_id.clone(),
            seq,
            ts_ms: unix_ms(at),
            frame: frame.clone(),
        };
        let log = self.clone();
        let on_durable = Box::new(move |result| log.delivered(seq, frame, terminal, result));
        if !terminal {
            self.user_backlog.add(cost);
            self.store.append_event(record, on_durable);
            return Ok(());
        }
        submit.closed = true;
        let streamed = std::mem::take(&mut submit.streamed);
        let (end, messages) = self.ending(&kind, streamed, at);
        self.store.end_run(record, messages, end, on_durable);
        Ok(())
    }

    /// The run's end status and the messages it adds to its thread: the
    /// user's message always, the answer when there is one.
    fn ending(
        &self,
        kind: &EventKind,
        streamed: String,
        at: SystemTime,
    ) -> (netra_store::RunEnd, Vec<NewMessage>) {
        let mut messages = vec![NewMessage {
            role: Role::User,
            content: self.input.clone(),
        }];
        let (status, error_code, usage, answer) = match kind {
            EventKind::AgentCompleted {
                output,
                outcome,
                usage,
            } => {
                let status = match outcome {
                    Outcome::Completed => RunStatus::Completed,
                    Outcome::Cancelled => RunStatus::Cancelled,
                };
                (status, None, *usage, Some(output.clone()))
            }
            EventKind::AgentError { code, .. } => {
                (RunStatus::Failed, Some(code.to_string()), None, None)
            }
            _ => (
                RunStatus::Failed,
                Some(Code::Internal.to_string()),
                None,
                Some(streamed),
            ),
        };
        if let Some(answer) = answer.filter(|a| !a.is_empty()) {
            messages.push(NewMessage {
                role: Role::Assistant,
                content: answer,
            });
        }
        let end = netra_store::RunEnd {
            status,
            ended_at: at,
            error_code,
            usage: usage.map(|u| netra_store::Usage {
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
            }),
        };
        if self.parent_run_id.is_some() {
            // A nested run talks to its parent agent, not to the thread.
            messages.clear();
        }
        (end, messages)
    }

    /// Waits until fewer than `max` of its user's events (this run's
    /// included) are waiting for the store: a user whose runs emit faster
    /// than the store commits waits here (their guests are paused), while
    /// other users' writes go through.
    pub async fn settled(&self, max: usize) {
        self.user_backlog.below(max).await;
    }

    /// The store's verdict on event `seq`; runs in submission order.
    fn delivered(&self, seq: u64, frame: Frame, terminal: bool, result: Result<(), StoreError>) {
        if !terminal {
            self.user_backlog.done();
        }
        let mut durable = self.durable();
        if !durable.closed {
            match result {
                Ok(()) if terminal => {
                    durable.frames.push(frame.clone());
                    durable.closed = true;
                    let subscribers = std::mem::take(&mut durable.subscribers);
                    drop(durable);
                    // The run leaves the active set before anyone sees its
                    // end, so a command sent on seeing it (a new run on the
                    // thread, a cancel) finds the run over.
                    self.closed();
                    for (outbox, after) in subscribers {
                        if seq > after {
                            outbox.push(frame.clone());
                        }
                    }
                    return;
                }
                Ok(()) => {
                    durable.frames.push(frame.clone());
                    durable
                        .subscribers
                        .retain(|(outbox, after)| seq <= *after || outbox.push(frame.clone()));
                }
                Err(err) => {
                    tracing::error!(run_id = %self.run_id, seq, "the store failed an event: {err}");
                    self.halted.store(true, Ordering::Release);
                    let at = SystemTime::now();
                    let kind = EventKind::AgentError {
                        code: Code::StoreUnavailable,
                        message: format!("the host could not record the run: {err}"),
                        retryable: true,
                    };
                    if let Some(frame) = self.frame(seq, at, &kind) {
                        for (outbox, _) in &durable.subscribers {
                            outbox.push(frame.clone());
                        }
                        // Try to record the end the clients saw, in the
                        // failed event's place, so the log has no gap.
                        let (end, messages) = self.ending(&kind, String::new(), at);
                        let record = EventRecord {
                            run_id: self.run_id.clone(),
                            seq,
                            ts_ms: unix_ms(at),
                            frame,
                        };
                        let run_id = self.run_id.clone();
                        self.store.end_run(
                            record,
                            messages,
                            end,
                            Box::new(move |result| {
                                if let Err(err) = result {
                                    tracing::error!(%run_id, "cannot record the end of the run either: {err}; recovery will close it at the next start");
                                }
                            }),
                        );
                    }
                    durable.closed = true;
                    durable.subscribers.clear();
                    self.abort.cancel();
                }
            }
        }
        drop(durable);
        if terminal {
            self.closed();
        }
    }

    /// Runs the `on_closed` hook, once.
    fn closed(&self) {
        let hook = self
            .on_closed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(hook) = hook {
            hook();
        }
    }
}

/// `at` as Unix milliseconds.
pub(crate) fn unix_ms(at: SystemTime) -> i64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl UnstartedRun {
    /// The log, for subscribing before the run starts.
    pub fn log(&self) -> &Arc<RunLog> {
        &self.log
    }

    /// Subscribes `outbox` to every event of the run.
    pub fn subscribe(&self, outbox: Outbox) {
        self.log.subscribe_from_start(outbox);
    }

    /// Emits `agent_started` and hands out the run's emitting capabilities.
    pub fn start(self, agent: String, version: String) -> (RunEvents, RunEnd) {
        // Never refused: the start does not count against the budget.
        let _ = self.log.append(EventKind::AgentStarted { agent, version });
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
    /// `agent_thinking`, unless the run's budget is spent.
    pub fn thinking(&self, text: String) -> Result<(), Overspent> {
        self.log.append(EventKind::AgentThinking { text })
    }

    /// `message_delta`, unless the run's budget is spent.
    pub fn message_delta(&self, text: String) -> Result<(), Overspent> {
        self.log.append(EventKind::MessageDelta { text })
    }

    /// Any other event of the run (questions), unless its budget is spent.
    pub fn emit(&self, kind: EventKind) -> Result<(), Overspent> {
        self.log.append(kind)
    }

    /// Emits `tool_executing` and returns the span that will emit its
    /// `tool_completed`, unless the run's budget is spent.
    pub fn tool_call(&self, tool: &str, arguments: &str) -> Result<ToolSpan, Overspent> {
        let arguments = serde_json::from_str(arguments)
            .unwrap_or_else(|_| Value::String(arguments.to_string()));
        self.tool_call_with(tool, arguments)
    }

    /// Emits `tool_executing` with `arguments` as they are to be shown.
    pub fn tool_call_with(&self, tool: &str, arguments: Value) -> Result<ToolSpan, Overspent> {
        let tool_call_id = ids::tool_call_id();
        self.log.append(EventKind::ToolExecuting {
            tool_call_id: tool_call_id.clone(),
            tool: tool.to_string(),
            arguments,
        })?;
        Ok(ToolSpan {
            log: self.log.clone(),
            tool_call_id,
            tool: tool.to_string(),
            started: Instant::now(),
            done: false,
        })
    }

    /// The run's log.
    pub fn log(&self) -> &Arc<RunLog> {
        &self.log
    }
}

/// A tool call's progress reports as the run's `tool_progress` events: at
/// most `per_second` in any second (the rest dropped), each counted in the
/// run's event budget; once the budget is spent, nothing more is sent (the
/// run ends with `budget_events` at the agent's next event).
pub struct SpanProgress {
    log: Arc<RunLog>,
    tool_call_id: String,
    tool: String,
    per_second: u64,
    /// The current second's start and the reports sent in it.
    window: Mutex<(Instant, u64)>,
    spent: AtomicBool,
}

impl CallObserver for SpanProgress {
    fn log(&self, _level: LogLevel, _message: &str) {
        // A tool's log lines go to the host's log only.
    }

    fn progress(&self, text: &str, fraction: Option<f32>) {
        if self.spent.load(Ordering::Relaxed) {
            return;
        }
        {
            let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            if now.duration_since(window.0) >= Duration::from_secs(1) {
                *window = (now, 0);
            }
            if window.1 >= self.per_second {
                return;
            }
            window.1 += 1;
        }
        let event = EventKind::ToolProgress {
            tool_call_id: self.tool_call_id.clone(),
            tool: self.tool.clone(),
            text: text.to_string(),
            fraction,
        };
        if self.log.append(event).is_err() {
            self.spent.store(true, Ordering::Relaxed);
        }
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
    /// Where the call's progress reports go (see [`SpanProgress`]).
    pub fn progress(&self, per_second: u64) -> Arc<SpanProgress> {
        Arc::new(SpanProgress {
            log: self.log.clone(),
            tool_call_id: self.tool_call_id.clone(),
            tool: self.tool.clone(),
            per_second,
            window: Mutex::new((Instant::now(), 0)),
            spent: AtomicBool::new(false),
        })
    }

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
        // Never refused: it closes a `tool_executing` already written.
        let _ = self.log.append(EventKind::ToolCompleted {
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
                code: Code::Cancelled,
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
        let output = std::mem::take(&mut self.log.submit().streamed);
        self.end(EventKind::AgentCompleted {
            output,
            outcome: Outcome::Cancelled,
            usage,
        });
    }

    /// `agent_error`.
    pub fn failed(mut self, code: Code, message: String, retryable: bool) {
        self.end(EventKind::AgentError {
            code,
            message,
            retryable,
        });
    }

    fn end(&mut self, kind: EventKind) {
        self.done = true;
        // Never refused: every run ends.
        let _ = self.log.append(kind);
    }
}

impl Drop for RunEnd {
    fn drop(&mut self) {
        if !self.done {
            self.end(EventKind::AgentError {
                code: Code::Internal,
                message: "the run ended without a result (host error)".into(),
                retryable: true,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use netra_store::{MemoryStore, NewRun, NewThread};

    use super::*;

    fn frames(rx: &mut Inbox) -> Vec<Value> {
        let mut out = Vec::new();
        while let Some(frame) = rx.try_recv() {
            out.push(serde_json::from_str(&frame).unwrap());
        }
        out
    }

    /// A run recorded in a fresh memory store, and the store.
    fn recorded(run_id: &str) -> (UnstartedRun, Arc<dyn Store>) {
        recorded_with(run_id, EventBudget::default())
    }

    /// [`recorded`] with a log of `budget`.
    fn recorded_with(run_id: &str, budget: EventBudget) -> (UnstartedRun, Arc<dyn Store>) {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let thread = NewThread {
            id: "thr_1".into(),
            owner: "u".into(),
            title: None,
        };
        let run = NewRun {
            id: run_id.into(),
            thread_id: "thr_1".into(),
            user: "u".into(),
            agent: "a".into(),
            plugin_version: "1".into(),
            input: "question".into(),
            started_at: SystemTime::now(),
            parent_run_id: None,
        };
        store.begin_run(Some(thread), run, Box::new(|r| r.unwrap()));
        let unstarted = RunLog::create(RunLogSpec {
            run_id: run_id.into(),
            thread_id: "thr_1".into(),
            parent_run_id: None,
            input: "question".into(),
            store: store.clone(),
            abort: CancellationToken::new(),
            budget,
            user_backlog: Arc::default(),
        });
        (unstarted, store)
    }

    #[test]
    fn events_are_numbered_stored_and_end_once() {
        let (run, store) = recorded("run_1");
        let (outbox, mut rx, _) = Outbox::new(64);
        run.subscribe(outbox);
        let (events, end) = run.start("helper".into(), "1".into());
        events.thinking("hm".into()).unwrap();
        let span = events
            .tool_call("calculate", r#"{"expression":"1+1"}"#)
            .unwrap();
        span.finish(Ok("2"));
        events.message_delta("2".into()).unwrap();
        end.completed("2".into(), None);
        events.thinking("too late".into()).unwrap();
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

        // The store holds exactly what was sent, the end, and the transcript.
        let stored: Vec<Value> = store
            .events_after("run_1", 0, 100)
            .unwrap()
            .iter()
            .map(|f| serde_json::from_str(f).unwrap())
            .collect();
        assert_eq!(stored, got);
        let record = store.run("run_1").unwrap().unwrap();
        assert_eq!(record.status, RunStatus::Completed);
        let messages = store.thread_messages("thr_1").unwrap();
        let transcript: Vec<_> = messages
            .iter()
            .map(|m| (m.role, m.content.as_str()))
            .collect();
        assert_eq!(
            transcript,
            [(Role::User, "question"), (Role::Assistant, "2")]
        );
    }

    #[tokio::test]
    async fn dropped_spans_and_ends_still_close_the_run() {
        let (run, store) = recorded("run_1");
        let log = run.log().clone();
        let (events, end) = run.start("a".into(), "1".into());
        events.message_delta("part".into()).unwrap();
        drop(events.tool_call("slow", "{}").unwrap());
        end.cancelled(None);
        let (outbox, mut rx, _) = Outbox::new(64);
        assert!(log.follow(outbox, 2).await);
        let got = frames(&mut rx);
        assert_eq!(got.len(), 3, "{got:#?}");
        assert_eq!(got[0]["type"], "tool_executing");
        assert_eq!(got[1]["type"], "tool_completed");
        assert_eq!(got[1]["error"]["code"], "cancelled");
        assert_eq!(got[2]["type"], "agent_completed");
        assert_eq!(got[2]["outcome"], "cancelled");
        assert_eq!(got[2]["output"], "part");
        assert!(log.is_closed());
        assert_eq!(
            store.run("run_1").unwrap().unwrap().status,
            RunStatus::Cancelled
        );

        let (run, store) = recorded("run_2");
        let log = run.log().clone();
        drop(run.start("a".into(), "1".into()));
        let (outbox, mut rx, _) = Outbox::new(64);
        assert!(log.follow(outbox, 0).await);
        let got = frames(&mut rx);
        assert_eq!(got.last().unwrap()["type"], "agent_error");
        assert_eq!(got.last().unwrap()["code"], "internal");
        let record = store.run("run_2").unwrap().unwrap();
        assert_eq!(record.error_code.as_deref(), Some("internal"));
    }

    #[tokio::test]
    async fn a_long_backlog_is_replayed_then_followed_live_without_gaps() {
        let (run, _store) = recorded("run_1");
        let log = run.log().clone();
        let (events, end) = run.start("a".into(), "1".into());
        for i in 0..1000 {
            events.message_delta(format!("{i} ")).unwrap();
        }
        // A queue smaller than the backlog: the replay waits for room.
        let (outbox, mut rx, overflow) = Outbox::new(16);
        let reader = tokio::spawn(async move {
            let mut seqs = Vec::new();
            while let Some(frame) = rx.recv().await {
                let value: Value = serde_json::from_str(&frame).unwrap();
                seqs.push(value["seq"].as_u64().unwrap());
                if value["type"] == "agent_completed" {
                    break;
                }
            }
            seqs
        });
        assert!(log.follow(outbox, 10).await);
        end.completed("done".into(), None);
        let seqs = reader.await.unwrap();
        assert_eq!(seqs, (11..=1002).collect::<Vec<_>>());
        assert!(!overflow.is_cancelled());
    }

    #[test]
    fn a_store_failure_ends_the_stream_and_cancels_the_run() {
        // No begin_run: the store refuses the run's events.
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let abort = CancellationToken::new();
        let run = RunLog::create(RunLogSpec {
            run_id: "run_x".into(),
            thread_id: "thr_x".into(),
            parent_run_id: None,
            input: "q".into(),
            store,
            abort: abort.clone(),
            budget: EventBudget::default(),
            user_backlog: Arc::default(),
        });
        let (outbox, mut rx, _) = Outbox::new(64);
        run.subscribe(outbox);
        let (events, end) = run.start("a".into(), "1".into());
        events.thinking("more".into()).unwrap();
        end.completed("x".into(), None);
        let got = frames(&mut rx);
        assert_eq!(got.len(), 1, "{got:#?}");
        assert_eq!(got[0]["type"], "agent_error");
        assert_eq!(got[0]["code"], "store_unavailable");
        assert!(abort.is_cancelled());
    }

    /// A recorded run whose log has `budget`.
    fn budgeted(budget: EventBudget) -> UnstartedRun {
        recorded_with("run_b", budget).0
    }

    #[test]
    fn the_event_budget_refuses_progress_but_never_the_end() {
        let run = budgeted(EventBudget {
            max_events: 3,
            max_bytes: u64::MAX,
        });
        let (outbox, mut rx, _) = Outbox::new(64);
        run.subscribe(outbox);
        let (events, end) = run.start("a".into(), "1".into());
        events.thinking("1".into()).unwrap();
        let span = events.tool_call("calculate", "{}").unwrap();
        // The third event of the budget closes the call already shown.
        span.finish(Ok("2"));
        let refused = events.thinking("4".into()).unwrap_err();
        assert_eq!(refused.code, Code::BudgetEvents);
        let again = events.tool_call("calculate", "{}").err().map(|o| o.code);
        assert_eq!(again, Some(Code::BudgetEvents));
        end.failed(refused.code, refused.message, false);
        let types: Vec<_> = frames(&mut rx)
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
                "agent_error"
            ]
        );
    }

    #[test]
    fn the_byte_budget_counts_frames() {
        let run = budgeted(EventBudget {
            max_events: 1000,
            max_bytes: 2000,
        });
        let (events, _end) = run.start("a".into(), "1".into());
        events.thinking("x".repeat(1000)).unwrap();
        let refused = events.thinking("x".repeat(1000)).unwrap_err();
        assert_eq!(refused.code, Code::BudgetEventBytes);
        // A small one still fits.
        events.thinking("y".into()).unwrap();
    }

    #[test]
    fn an_outbox_is_bounded_in_bytes_too() {
        let (outbox, mut inbox, overflow) = Outbox::bounded(100, 10);
        assert!(
            outbox.push("a frame bigger than the bound".into()),
            "fits an empty queue"
        );
        assert!(!outbox.push("x".into()));
        assert!(overflow.is_cancelled());
        assert!(inbox.try_recv().is_some());
        assert!(
            outbox.push("12345".into()),
            "room again once the writer took it"
        );
    }

    #[test]
    fn a_full_outbox_signals_overflow() {
        let (run, _store) = recorded("run_1");
        let (outbox, _rx, overflow) = Outbox::new(2);
        run.subscribe(outbox);
        let (events, _end) = run.start("a".into(), "1".into());
        events.thinking("1".into()).unwrap();
        assert!(!overflow.is_cancelled());
        events.thinking("2".into()).unwrap();
        assert!(overflow.is_cancelled());
    }
}
