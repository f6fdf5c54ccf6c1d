//! The wire: every type that crosses a process boundary, and the only
//! serialized types of the server. This module is the netra.v1 WebSocket
//! protocol; [`ready`] is `/readyz` and the self-check, [`admin`] the HTTP
//! error bodies and the admin API, and [`Code`] the failure codes of runs and
//! tool calls.
//!
//! Client frames are JSON objects with a `type` and a client-chosen `id`;
//! the host answers each with `ack {ref, ...}` or `error {ref, code, message}`,
//! and streams run events. `docs/protocol.md` documents every message and
//! `docs/protocol.schema.json` is the JSON Schema the tests validate against.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub mod admin;
mod codes;
pub mod ready;

pub use codes::Code;

/// The WebSocket subprotocol this module implements.
pub const SUBPROTOCOL: &str = "netra.v1";

/// A command from the client: what a client sends (serialized), and what
/// the host reads (with [`parse`], which says precisely what is wrong).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Command {
    /// The client's id for the command, echoed as `ref`.
    pub id: String,
    /// What it asks for.
    #[serde(flatten)]
    pub kind: CommandKind,
}

impl Command {
    /// The command as a JSON text frame.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

/// The commands of netra.v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum CommandKind {
    /// Start a run of `agent` on `input`, in a new thread or in `thread_id`.
    #[serde(rename = "run.start")]
    RunStart {
        /// The agent's name.
        agent: String,
        /// The user's message.
        input: String,
        /// The thread to continue; a new thread when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        thread_id: Option<String>,
    },
    /// Cancel a run of this user.
    #[serde(rename = "run.cancel")]
    RunCancel {
        /// The run to cancel.
        run_id: String,
    },
    /// Answer the question `request_id` a run of this user asks
    /// (`input_requested`) with `value`, which must match its schema.
    #[serde(rename = "run.respond")]
    RunRespond {
        /// The run asking.
        run_id: String,
        /// The question, as in `input_requested`.
        request_id: String,
        /// The answer.
        value: Value,
    },
    /// Replay a run's events after `after_seq`, then follow it live.
    #[serde(rename = "run.subscribe")]
    RunSubscribe {
        /// The run to follow.
        run_id: String,
        /// The last seq the client has; 0 for all.
        #[serde(default)]
        after_seq: u64,
    },
    /// A thread's messages, oldest first.
    #[serde(rename = "thread.get")]
    ThreadGet {
        /// The thread.
        thread_id: String,
        /// Only messages with a higher seq (for paging); 0 for all.
        #[serde(default)]
        after_seq: u64,
        /// At most this many messages (default 100, at most 1000).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// The user's threads, most recently active first.
    #[serde(rename = "threads.list")]
    ThreadsList {
        /// At most this many threads (default 50, at most 500).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// List the agents.
    #[serde(rename = "agents.list")]
    AgentsList,
    /// List the tools.
    #[serde(rename = "tools.list")]
    ToolsList,
    /// Check the connection.
    #[serde(rename = "ping")]
    Ping,
}

/// A frame the host could not accept, as an `error` message.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// The command's id, when it could be read.
    pub reference: Option<String>,
    /// Machine-readable code.
    pub code: ErrorCode,
    /// What was wrong.
    pub message: String,
}

/// Error codes of `error` messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not a JSON object.
    BadFrame,
    /// The frame is not text.
    BinaryNotSupported,
    /// `type` names no command.
    UnknownCommand,
    /// A field is missing or has the wrong type.
    InvalidCommand,
    /// The agent does not exist.
    UnknownAgent,
    /// The run or thread does not exist or is not the user's.
    NotFound,
    /// The user already has as many runs going as allowed.
    TooManyRuns,
    /// The host is at its limit of concurrent runs.
    AtCapacity,
    /// The thread already has a run going; wait for it to end or cancel it.
    ThreadBusy,
    /// The run's events were deleted by the retention policy.
    Expired,
    /// The host could not serve the command now (its store failed); retry.
    Unavailable,
    /// An answer (`run.respond`) does not match the question's schema; the
    /// question stays open.
    InvalidValue,
}

impl ErrorCode {
    /// The code as it is written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadFrame => "bad_frame",
            ErrorCode::BinaryNotSupported => "binary_not_supported",
            ErrorCode::UnknownCommand => "unknown_command",
            ErrorCode::InvalidCommand => "invalid_command",
            ErrorCode::UnknownAgent => "unknown_agent",
            ErrorCode::NotFound => "not_found",
            ErrorCode::TooManyRuns => "too_many_runs",
            ErrorCode::AtCapacity => "at_capacity",
            ErrorCode::ThreadBusy => "thread_busy",
            ErrorCode::Expired => "expired",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::InvalidValue => "invalid_value",
        }
    }
}

/// The `type` of every command, as [`CommandKind`] names them.
const COMMANDS: &[&str] = &[
    "run.start",
    "run.cancel",
    "run.respond",
    "run.subscribe",
    "thread.get",
    "threads.list",
    "agents.list",
    "tools.list",
    "ping",
];

/// Longest client-chosen command id, in bytes.
const MAX_ID: usize = 128;

/// Parses one text frame.
pub fn parse(text: &str) -> Result<Command, Rejected> {
    let value: Value = serde_json::from_str(text).map_err(|e| Rejected {
        reference: None,
        code: ErrorCode::BadFrame,
        message: format!("frame is not valid JSON: {e}"),
    })?;
    let Value::Object(map) = &value else {
        return Err(Rejected {
            reference: None,
            code: ErrorCode::BadFrame,
            message: "frame must be a JSON object".into(),
        });
    };
    let reference = match map.get("id") {
        Some(Value::String(id)) if !id.is_empty() && id.len() <= MAX_ID => id.clone(),
        Some(Value::String(_)) => {
            return Err(invalid(None, format!("`id` must be 1-{MAX_ID} bytes long")));
        }
        Some(_) => return Err(invalid(None, "`id` must be a string".into())),
        None => return Err(invalid(None, "missing field `id`".into())),
    };
    let kind = match map.get("type") {
        Some(Value::String(kind)) => kind.clone(),
        Some(_) => return Err(invalid(Some(reference), "`type` must be a string".into())),
        None => return Err(invalid(Some(reference), "missing field `type`".into())),
    };
    if !COMMANDS.contains(&kind.as_str()) {
        return Err(Rejected {
            reference: Some(reference),
            code: ErrorCode::UnknownCommand,
            message: format!(
                "unknown command type {kind:?}; known: {}",
                COMMANDS.join(", ")
            ),
        });
    }
    match serde_json::from_value::<CommandKind>(value) {
        Ok(kind) => Ok(Command {
            id: reference,
            kind,
        }),
        Err(e) => Err(invalid(Some(reference), format!("invalid {kind}: {e}"))),
    }
}

fn invalid(reference: Option<String>, message: String) -> Rejected {
    Rejected {
        reference,
        code: ErrorCode::InvalidCommand,
        message,
    }
}

/// A message from the host that is not a run event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply<'a> {
    /// A command was accepted; the payload depends on the command.
    Ack {
        /// The command's `id`.
        #[serde(rename = "ref", borrow)]
        reference: Cow<'a, str>,
        /// What the command returns.
        #[serde(flatten)]
        payload: AckPayload,
    },
    /// A command or frame was rejected; the socket stays open.
    Error {
        /// The command's `id`, when it could be read.
        #[serde(
            rename = "ref",
            default,
            borrow,
            skip_serializing_if = "Option::is_none"
        )]
        reference: Option<Cow<'a, str>>,
        /// Machine-readable code.
        code: ErrorCode,
        /// What was wrong.
        #[serde(borrow)]
        message: Cow<'a, str>,
    },
}

/// What an `ack` carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AckPayload {
    /// `run.start`: the new run and its thread.
    RunStarted {
        /// The run.
        run_id: String,
        /// Its thread.
        thread_id: String,
    },
    /// `run.cancel` and `run.subscribe`: the run concerned.
    Run {
        /// The run.
        run_id: String,
    },
    /// `thread.get`.
    Thread {
        /// The thread.
        thread_id: String,
        /// Its messages after `after_seq`, oldest first.
        messages: Vec<MessageInfo>,
        /// Whether more messages follow the last one returned.
        has_more: bool,
    },
    /// `threads.list`.
    Threads {
        /// The user's threads, most recently active first.
        threads: Vec<ThreadInfo>,
    },
    /// `agents.list`.
    Agents {
        /// Every agent.
        agents: Vec<AgentInfo>,
    },
    /// `tools.list`.
    Tools {
        /// Every tool.
        tools: Vec<ToolInfo>,
    },
    /// `ping`.
    Pong {
        /// Always true.
        pong: bool,
    },
}

/// A message in `thread.get`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageInfo {
    /// Its position in the thread: 1, 2, 3 ...
    pub seq: u64,
    /// Who wrote it.
    pub role: MessageRole,
    /// Its text.
    pub content: String,
    /// The run that added it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// When it was added (RFC 3339).
    pub created_at: String,
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageRole {
    /// The system prompt.
    System,
    /// The user.
    User,
    /// The agent.
    Assistant,
    /// A tool result.
    Tool,
}

/// A thread in `threads.list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThreadInfo {
    /// The thread, for `run.start` and `thread.get`.
    pub thread_id: String,
    /// Its title (the start of its first message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When a message was last added (RFC 3339).
    pub last_activity: String,
    /// How many messages it holds.
    pub message_count: u64,
}

/// An agent in `agents.list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentInfo {
    /// Its name, for `run.start`.
    pub name: String,
    /// What it does.
    pub description: String,
    /// The version that new runs use: its manifest's `version`, else the
    /// start of its digest.
    pub version: String,
    /// The content hash of that version (`sha256:...`), when the host keeps
    /// versions (hot-loading).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Whether its runs can start.
    pub state: AgentState,
    /// Why it is degraded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An agent's state in `agents.list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    /// Its runs start.
    Ready,
    /// Something it needs is missing or down: its runs fail fast.
    Degraded,
}

/// A tool in `tools.list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolInfo {
    /// Its name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// Its arguments' JSON Schema.
    pub input_schema: Value,
    /// The plugin that provides it.
    pub plugin: String,
}

impl Reply<'_> {
    /// The message as a JSON text frame.
    pub fn to_text(&self) -> String {
        // Serializing these types cannot fail: every key is a string and no
        // value has a fallible `Serialize`.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

/// Any frame the host sends on the socket, as a client decodes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ServerFrame<'a> {
    /// A run event.
    #[serde(borrow)]
    Event(RunEvent<'a>),
    /// An `ack` or an `error`.
    #[serde(borrow)]
    Reply(Reply<'a>),
    /// The served plugins changed.
    PluginsChanged(admin::PluginsChanged),
}

impl<'a> ServerFrame<'a> {
    /// Decodes one text frame. A frame of a kind this build does not know
    /// (from a newer host) is an error the client may ignore.
    pub fn parse(text: &'a str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|_| {
            let kind = serde_json::from_str::<Value>(text)
                .ok()
                .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_string));
            match kind {
                Some(kind) => format!("a frame of an unknown shape (type {kind:?})"),
                None => "a frame is not a netra.v1 message".to_string(),
            }
        })
    }
}

/// One event of a run, as sent to clients and kept in the run's log. The
/// host serializes it from borrowed parts; a client decodes it owned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunEvent<'a> {
    /// The run.
    #[serde(borrow)]
    pub run_id: Cow<'a, str>,
    /// Its thread.
    #[serde(borrow)]
    pub thread_id: Cow<'a, str>,
    /// 1, 2, 3... per run, no gaps.
    pub seq: u64,
    /// When the host emitted it (RFC 3339, UTC, milliseconds).
    pub ts: String,
    /// Set on the events of a nested run (agent-as-tool).
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub parent_run_id: Option<Cow<'a, str>>,
    /// What happened.
    #[serde(flatten)]
    pub kind: Cow<'a, EventKind>,
}

/// The six run events, plus answer deltas and tool progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// The run began; always seq 1.
    AgentStarted {
        /// The agent.
        agent: String,
        /// The version of the agent the whole run uses.
        version: String,
    },
    /// The agent reported a step of reasoning.
    AgentThinking {
        /// The text.
        text: String,
    },
    /// A piece of the answer.
    MessageDelta {
        /// The text to append.
        text: String,
    },
    /// A tool call began.
    ToolExecuting {
        /// The call's id.
        tool_call_id: String,
        /// The tool.
        tool: String,
        /// Its arguments (a JSON value; a string if they were not JSON).
        arguments: Value,
    },
    /// The agent asks its user a question and waits (`interaction.ask`);
    /// the owner answers with `run.respond`.
    InputRequested {
        /// The question's id, for `run.respond`.
        request_id: String,
        /// What the user is asked.
        prompt: String,
        /// The JSON Schema the answer must match.
        schema: Value,
        /// When the run stops waiting (RFC 3339, UTC, milliseconds).
        expires_at: String,
    },
    /// A question of `input_requested` is closed: answered (with the
    /// answer), expired, or cancelled with its run.
    InputClosed {
        /// The question's id.
        request_id: String,
        /// `answered`, `declined`, `expired` or `cancelled`.
        outcome: String,
        /// The answer, when answered.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<Value>,
    },
    /// A tool reported progress while it ran (`progress.report`), between
    /// its `tool_executing` and its `tool_completed`.
    ToolProgress {
        /// The call's id, as in `tool_executing`.
        tool_call_id: String,
        /// The tool.
        tool: String,
        /// What the tool is doing.
        text: String,
        /// How much of its work is done, from 0 to 1, when it knows.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fraction: Option<f32>,
    },
    /// A tool call ended; exactly one of `ok` / `error` is present.
    ToolCompleted {
        /// The call's id, as in `tool_executing`.
        tool_call_id: String,
        /// The tool.
        tool: String,
        /// Its result.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ok: Option<Value>,
        /// Its error.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<ToolFailure>,
        /// How long it took, in milliseconds.
        duration_ms: f64,
    },
    /// The run ended normally or was cancelled. Terminal.
    AgentCompleted {
        /// The answer (for a cancelled run, what was streamed so far).
        output: String,
        /// `completed` or `cancelled`.
        outcome: Outcome,
        /// Tokens used, when a model was called.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<Usage>,
    },
    /// The run failed. Terminal.
    AgentError {
        /// Machine-readable code.
        code: Code,
        /// What went wrong.
        message: String,
        /// Whether running it again may succeed.
        retryable: bool,
    },
}

impl EventKind {
    /// Whether this event ends its run.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            EventKind::AgentCompleted { .. } | EventKind::AgentError { .. }
        )
    }
}

/// How a tool call failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolFailure {
    /// Machine-readable code (`invalid_arguments`, `denied`, `not_found`,
    /// `failed`, `timeout`, `cancelled`, or a runtime failure such as `trap`).
    pub code: Code,
    /// What went wrong.
    pub message: String,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The agent answered.
    Completed,
    /// The run was cancelled.
    Cancelled,
}

/// Model tokens used by a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
}

/// `at`, formatted for `ts` (RFC 3339, UTC, milliseconds).
pub fn timestamp_of(at: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_command() {
        let cmd = parse(r#"{"type":"run.start","id":"1","agent":"helper","input":"hi"}"#).unwrap();
        assert_eq!(
            cmd.kind,
            CommandKind::RunStart {
                agent: "helper".into(),
                input: "hi".into(),
                thread_id: None
            }
        );
        assert_eq!(
            parse(r#"{"type":"ping","id":"p"}"#).unwrap().kind,
            CommandKind::Ping
        );
        assert_eq!(
            parse(r#"{"type":"run.subscribe","id":"s","run_id":"r"}"#)
                .unwrap()
                .kind,
            CommandKind::RunSubscribe {
                run_id: "r".into(),
                after_seq: 0
            }
        );
    }

    #[test]
    fn rejects_bad_frames_with_precise_codes() {
        for code in [
            ErrorCode::BadFrame,
            ErrorCode::TooManyRuns,
            ErrorCode::Unavailable,
        ] {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
        assert_eq!(parse("{nope").unwrap_err().code, ErrorCode::BadFrame);
        assert_eq!(parse("[1]").unwrap_err().code, ErrorCode::BadFrame);
        let err = parse(r#"{"type":"ping"}"#).unwrap_err();
        assert_eq!((err.code, err.reference), (ErrorCode::InvalidCommand, None));
        let err = parse(r#"{"type":"run.fly","id":"x"}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::UnknownCommand);
        assert_eq!(err.reference.as_deref(), Some("x"));
        let err = parse(r#"{"type":"run.start","id":"x","agent":"helper"}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidCommand);
        assert!(err.message.contains("input"), "{}", err.message);
    }

    #[test]
    fn commands_serialize_as_they_parse() {
        for kind in [
            CommandKind::RunStart {
                agent: "helper".into(),
                input: "hi".into(),
                thread_id: Some("thr_1".into()),
            },
            CommandKind::RunCancel {
                run_id: "run_1".into(),
            },
            CommandKind::RunRespond {
                run_id: "run_1".into(),
                request_id: "req_1".into(),
                value: serde_json::json!({"name": "Ada"}),
            },
            CommandKind::ThreadsList { limit: None },
            CommandKind::Ping,
        ] {
            let command = Command {
                id: "c1".into(),
                kind,
            };
            assert_eq!(parse(&command.to_text()), Ok(command));
        }
    }

    #[test]
    fn every_kind_of_server_frame_decodes() {
        let reply = Reply::Ack {
            reference: "c1".into(),
            payload: AckPayload::RunStarted {
                run_id: "run_1".into(),
                thread_id: "thr_1".into(),
            },
        }
        .to_text();
        assert!(matches!(
            ServerFrame::parse(&reply),
            Ok(ServerFrame::Reply(Reply::Ack {
                payload: AckPayload::RunStarted { .. },
                ..
            }))
        ));
        let error = Reply::Error {
            reference: None,
            code: ErrorCode::BadFrame,
            message: "no".into(),
        }
        .to_text();
        assert!(matches!(
            ServerFrame::parse(&error),
            Ok(ServerFrame::Reply(Reply::Error {
                code: ErrorCode::BadFrame,
                ..
            }))
        ));
        let event = r#"{"run_id":"r","thread_id":"t","seq":2,"ts":"x","type":"agent_error","code":"trap","message":"m","retryable":false}"#;
        match ServerFrame::parse(event) {
            Ok(ServerFrame::Event(event)) => assert!(matches!(
                event.kind.as_ref(),
                EventKind::AgentError {
                    code: Code::Trap,
                    ..
                }
            )),
            other => panic!("{other:?}"),
        }
        let changed = admin::PluginsChanged::new(admin::PluginChange::Many { missed: 2 }).to_text();
        assert!(matches!(
            ServerFrame::parse(&changed),
            Ok(ServerFrame::PluginsChanged(_))
        ));
        let unknown = ServerFrame::parse(r#"{"type":"from_the_future"}"#).unwrap_err();
        assert!(unknown.contains("from_the_future"), "{unknown}");
    }

    #[test]
    fn events_serialize_flat() {
        let kind = EventKind::MessageDelta { text: "hi".into() };
        let event = RunEvent {
            run_id: "run_1".into(),
            thread_id: "thr_1".into(),
            seq: 3,
            ts: "t".into(),
            parent_run_id: None,
            kind: Cow::Borrowed(&kind),
        };
        let json: Value = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], "message_delta");
        assert_eq!(json["seq"], 3);
        assert_eq!(json["text"], "hi");
        assert!(json.get("parent_run_id").is_none());
        let text = json.to_string();
        let back: RunEvent<'_> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, event);
    }
}

#[cfg(test)]
pub(crate) mod fuzz_tests;
