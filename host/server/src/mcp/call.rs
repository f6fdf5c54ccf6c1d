//! `tools/call` of a plugin's tool: one fresh instance for the call, with
//! the plugin's deadline, fuel, memory and result limits; the guest's log
//! lines and progress reports become notifications on the call's stream.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use netra_runtime::{
    CallObserver, Interaction, InvokeError, LogLevel, RunContext, tool_error_message,
};
use rmcp::ErrorData;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ContentBlock, LoggingLevel,
    LoggingMessageNotificationParam, ProgressNotificationParam, ProgressToken,
};
use rmcp::service::{Peer, RequestContext, RoleServer};
use serde_json::Value;
use tokio::sync::mpsc;

use super::handler::{Handler, LOG_OFF, rank};
use crate::ids;
use crate::protocol::Code;
use crate::registry::ToolEntry;

/// Calls `entry`'s tool for `user` in a fresh instance. A tool's failure
/// (its error, a trap, a limit) is a result with `isError`; a cancelled
/// call ends at once and its instance is dropped.
pub(super) async fn call(
    handler: &Handler,
    user: &str,
    entry: &ToolEntry,
    request: CallToolRequestParams,
    cx: &RequestContext<RoleServer>,
) -> Result<CallToolResult, ErrorData> {
    let arguments = match &request.arguments {
        Some(arguments) => serde_json::to_string(arguments)
            .map_err(|err| ErrorData::invalid_params(err.to_string(), None))?,
        None => String::from("{}"),
    };
    let notes = Notes::start(handler, cx, entry.plugin.name());
    let ask = entry
        .plugin
        .asks()
        .then(|| super::ask::ClientAsk::new(cx) as Arc<dyn Interaction>);
    let result = invoke(
        user,
        entry,
        &request.name,
        &arguments,
        Follow {
            notes: notes.clone(),
            ask,
        },
        &cx.ct,
    )
    .await;
    if let Some(notes) = notes {
        notes.finish().await;
    }
    result.ok_or_else(cancelled)
}

/// Who follows a call besides its caller: where its notifications go and
/// who answers its questions.
#[derive(Default)]
pub(super) struct Follow {
    pub(super) notes: Option<Arc<Notes>>,
    pub(super) ask: Option<Arc<dyn Interaction>>,
}

/// The call itself: `None` if `cancel` fired first.
pub(super) async fn invoke(
    user: &str,
    entry: &ToolEntry,
    name: &str,
    arguments: &str,
    follow: Follow,
    cancel: &tokio_util::sync::CancellationToken,
) -> Option<CallToolResult> {
    let ctx = RunContext {
        user_id: user.to_string(),
        thread_id: String::new(),
        run_id: ids::tool_call_id(),
    };
    let work = async {
        let mut instance = entry.plugin.instantiate(ctx).await?;
        if let Some(notes) = follow.notes {
            instance.observe(notes);
        }
        if let Some(ask) = follow.ask {
            instance.interact(ask);
        }
        instance.invoke(name, arguments).await
    };
    let outcome = tokio::select! {
        outcome = work => outcome,
        () = cancel.cancelled() => return None,
    };
    Some(match outcome {
        Ok(json) => result_of(&json),
        Err(InvokeError::Tool(err)) => failure(Code::from(&err), &tool_error_message(&err)),
        Err(err) => failure(Code::from(&err), &err.to_string()),
    })
}

/// The error of a request the client cancelled (it is not sent: the
/// client stopped waiting for it).
pub(super) fn cancelled() -> ErrorData {
    ErrorData::new(
        rmcp::model::ErrorCode::INTERNAL_ERROR,
        "the request was cancelled",
        None,
    )
}

/// A tool's JSON result as MCP content: its text rendering (a string as
/// itself), and as `structuredContent` an object as it is, any other value
/// as `{"result": value}` (MCP wants an object there; the descriptor's
/// output schema is wrapped the same way). A result of the one key
/// `$content` is a list of MCP content blocks (text, image, audio,
/// resource), given to the client as they are.
pub(super) fn result_of(json: &str) -> CallToolResult {
    let Ok(value) = serde_json::from_str::<Value>(json) else {
        return CallToolResult::success(vec![ContentBlock::text(json)]);
    };
    if let Value::Object(map) = &value
        && map.len() == 1
        && let Some(blocks) = map.get("$content")
    {
        return match serde_json::from_value::<Vec<ContentBlock>>(blocks.clone()) {
            Ok(blocks) => CallToolResult::success(blocks),
            Err(err) => failure(
                Code::Other("invalid_content".into()),
                &format!(
                    "the tool returned $content that is not a list of MCP content blocks: {err}"
                ),
            ),
        };
    }
    let text = match &value {
        Value::String(text) => text.clone(),
        _ => json.to_string(),
    };
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(match value {
        Value::Object(_) => value,
        other => serde_json::json!({ "result": other }),
    });
    result
}

/// A result with `isError`: `code: message` as its text.
pub(super) fn failure(code: Code, message: &str) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(format!("{code}: {message}"))])
}

/// The notifications of one call, sent in order on its stream by a task of
/// their own: the guest (or the run) queues them and goes on. At most
/// `max` per call; the excess is dropped and counted in one last log line.
pub(super) struct Notes {
    tx: Mutex<Option<mpsc::UnboundedSender<Note>>>,
    forwarder: Mutex<Option<tokio::task::JoinHandle<()>>>,
    token: Option<ProgressToken>,
    log_level: u8,
    logger: String,
    max: u64,
    sent: AtomicU64,
    dropped: AtomicU64,
    /// The last progress sent (they never go down), as f64 bits.
    progress: AtomicU64,
}

enum Note {
    Log(LoggingMessageNotificationParam),
    Progress(ProgressNotificationParam),
}

impl Notes {
    /// Notes for the call of `cx`, if its client asked for progress or set
    /// a log level; `logger` names the plugin or agent in log notices.
    pub(super) fn start(
        handler: &Handler,
        cx: &RequestContext<RoleServer>,
        logger: &str,
    ) -> Option<Arc<Self>> {
        let token = cx.meta.get_progress_token();
        let log_level = handler.log_level();
        if token.is_none() && log_level == LOG_OFF {
            return None;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let forwarder = tokio::spawn(forward(cx.peer.clone(), rx));
        Some(Arc::new(Self {
            tx: Mutex::new(Some(tx)),
            forwarder: Mutex::new(Some(forwarder)),
            token,
            log_level,
            logger: logger.to_string(),
            max: handler.max_notifications(),
            sent: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            progress: AtomicU64::new(0f64.to_bits()),
        }))
    }

    fn send(&self, note: Note) {
        if self.sent.fetch_add(1, Ordering::Relaxed) >= self.max {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if let Ok(tx) = self.tx.lock()
            && let Some(tx) = tx.as_ref()
        {
            let _ = tx.send(note);
        }
    }

    /// A log notice at `level`, if the session wants that level.
    pub(super) fn log(&self, level: LoggingLevel, data: Value) {
        if rank(level) < self.log_level {
            return;
        }
        let note = LoggingMessageNotificationParam::new(level, data).with_logger(&self.logger);
        self.send(Note::Log(note));
    }

    /// A progress notice, if the client asked for progress: `fraction`
    /// of 100, or one step more when there is no fraction.
    pub(super) fn progress(&self, message: Option<String>, fraction: Option<f32>) {
        let Some(token) = &self.token else {
            return;
        };
        let last = f64::from_bits(self.progress.load(Ordering::Relaxed));
        let (value, total) = match fraction {
            Some(f) => ((f64::from(f) * 100.0).max(last), Some(100.0)),
            None => (last + 1.0, None),
        };
        self.progress.store(value.to_bits(), Ordering::Relaxed);
        let mut note = ProgressNotificationParam::new(token.clone(), value);
        note.total = total;
        note.message = message;
        self.send(Note::Progress(note));
    }

    /// Sends what is queued, then stops: the call's notifications all
    /// precede its result.
    pub(super) async fn finish(&self) {
        let dropped = self.dropped.load(Ordering::Relaxed);
        if dropped > 0 && rank(LoggingLevel::Warning) >= self.log_level {
            let text = format!(
                "{dropped} notifications of this call were dropped (mcp.max_notifications_per_call is {})",
                self.max
            );
            if let Ok(tx) = self.tx.lock()
                && let Some(tx) = tx.as_ref()
            {
                let note = LoggingMessageNotificationParam::new(LoggingLevel::Warning, text.into())
                    .with_logger(&self.logger);
                let _ = tx.send(Note::Log(note));
            }
        }
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        let forwarder = self.forwarder.lock().ok().and_then(|mut f| f.take());
        if let Some(forwarder) = forwarder {
            let _ = forwarder.await;
        }
    }
}

async fn forward(peer: Peer<RoleServer>, mut rx: mpsc::UnboundedReceiver<Note>) {
    while let Some(note) = rx.recv().await {
        let sent = match note {
            Note::Log(note) => peer.notify_logging_message(note).await,
            Note::Progress(note) => peer.notify_progress(note).await,
        };
        if let Err(err) = sent {
            tracing::debug!("cannot send an MCP notification: {err}");
            return;
        }
    }
}

impl CallObserver for Notes {
    fn log(&self, level: LogLevel, message: &str) {
        let level = match level {
            LogLevel::Trace | LogLevel::Debug => LoggingLevel::Debug,
            LogLevel::Info => LoggingLevel::Info,
            LogLevel::Warn => LoggingLevel::Warning,
            LogLevel::Error => LoggingLevel::Error,
        };
        Notes::log(self, level, Value::String(message.to_string()));
    }

    fn progress(&self, text: &str, fraction: Option<f32>) {
        Notes::progress(self, Some(text.to_string()), fraction);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_structured_strings_are_text_and_content_passes_through() {
        let object = result_of(r#"{"value":14}"#);
        assert_eq!(
            object.structured_content,
            Some(serde_json::json!({"value": 14}))
        );
        assert_eq!(object.is_error, Some(false));
        let string = result_of(r#""hello""#);
        assert_eq!(
            string.structured_content,
            Some(serde_json::json!({"result": "hello"}))
        );
        let number = result_of("14");
        assert_eq!(
            number.structured_content,
            Some(serde_json::json!({"result": 14}))
        );
        let text = serde_json::to_value(&string.content).unwrap_or_default();
        assert_eq!(text[0]["text"], "hello");
        let image = result_of(
            r#"{"$content":[{"type":"image","data":"iVBORw0KGgo=","mimeType":"image/png"}]}"#,
        );
        let blocks = serde_json::to_value(&image.content).unwrap_or_default();
        assert_eq!(blocks[0]["type"], "image");
        assert_eq!(image.structured_content, None);
        let bad = result_of(r#"{"$content":[{"type":"nonsense"}]}"#);
        assert_eq!(bad.is_error, Some(true));
    }
}
