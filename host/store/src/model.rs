//! The values that go into and come out of the store. Plain data: none of them
//! is serialized anywhere but in SQL, column by column.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::StoreError;

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Instructions from the host or operator.
    System,
    /// The user.
    User,
    /// The agent.
    Assistant,
    /// A tool's result.
    Tool,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::User => "user",
            Self::Assistant => "assistant",
            Self::Tool => "tool",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "system" => Self::System,
            "user" => Self::User,
            "assistant" => Self::Assistant,
            "tool" => Self::Tool,
            _ => return None,
        })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A message to append to a thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMessage {
    /// Who wrote it.
    pub role: Role,
    /// Its text.
    pub content: String,
}

/// A message as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    /// Its position in the thread: 1, 2, 3 ...
    pub seq: u64,
    /// Who wrote it.
    pub role: Role,
    /// Its text.
    pub content: String,
    /// The run that added it (`None` if that run was deleted).
    pub run_id: Option<String>,
    /// When it was appended.
    pub created_at: SystemTime,
}

/// One line of a user's thread list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadSummary {
    /// The thread.
    pub id: String,
    /// Its title, if one was set.
    pub title: Option<String>,
    /// When it was created.
    pub created_at: SystemTime,
    /// When a message was last appended (its creation time if none was).
    pub last_activity: SystemTime,
    /// How many messages it holds.
    pub message_count: u64,
}

/// How a run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RunStatus {
    /// Started and not ended (or interrupted by a crash, until recovery closes it).
    Running,
    /// Ended with `agent_completed {outcome: completed}`.
    Completed,
    /// Ended with `agent_completed {outcome: cancelled}`.
    Cancelled,
    /// Ended with `agent_error`.
    Failed,
}

impl RunStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => Self::Running,
            "completed" => Self::Completed,
            "cancelled" => Self::Cancelled,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Tokens an LLM reported for a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
}

/// A thread to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewThread {
    /// The thread's id.
    pub id: String,
    /// The user who owns it: the only one who may read or continue it.
    pub owner: String,
    /// A title to show in thread lists.
    pub title: Option<String>,
}

/// A run to record as started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRun {
    /// The run's id.
    pub id: String,
    /// The thread it belongs to (must exist).
    pub thread_id: String,
    /// The user who started it.
    pub user: String,
    /// The agent's name.
    pub agent: String,
    /// The agent plugin's version.
    pub plugin_version: String,
    /// What the user sent.
    pub input: String,
    /// When it started.
    pub started_at: SystemTime,
    /// The run that started it (agent-as-tool), if any.
    pub parent_run_id: Option<String>,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunEnd {
    /// Any status but [`RunStatus::Running`].
    pub status: RunStatus,
    /// When it ended.
    pub ended_at: SystemTime,
    /// The `agent_error` code, for failed runs.
    pub error_code: Option<String>,
    /// Token usage, if the agent reported any.
    pub usage: Option<Usage>,
}

/// A run as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRecord {
    /// The run's id.
    pub id: String,
    /// Its thread.
    pub thread_id: String,
    /// The user who started it: the only one who may read or subscribe to it.
    pub user: String,
    /// The agent's name.
    pub agent: String,
    /// The agent plugin's version.
    pub plugin_version: String,
    /// How it stands.
    pub status: RunStatus,
    /// What the user sent.
    pub input: String,
    /// When it started.
    pub started_at: SystemTime,
    /// When it ended, unless it is running.
    pub ended_at: Option<SystemTime>,
    /// The `agent_error` code of a failed run.
    pub error_code: Option<String>,
    /// Token usage, if reported.
    pub usage: Option<Usage>,
    /// The highest event seq in the log; 0 if it has none (or they were pruned).
    pub last_seq: u64,
    /// Whether retention deleted the run's events.
    pub events_pruned: bool,
    /// The run that started it (agent-as-tool), if any.
    pub parent_run_id: Option<String>,
}

/// One event of a run's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRecord {
    /// The run.
    pub run_id: String,
    /// Its number in the run: 1, 2, 3 ..., no gaps.
    pub seq: u64,
    /// When it was emitted, Unix milliseconds.
    pub ts_ms: i64,
    /// The exact JSON text sent to clients.
    pub frame: Arc<str>,
}

/// One line of the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// Who acted (a user id, `admin:<id>`, `host`).
    pub actor: String,
    /// What they did (`plugin.activate`, `run.recover` ...).
    pub action: String,
    /// What it was done to.
    pub subject: String,
    /// Details as JSON text (`{}` if none); the store rejects text that is not JSON.
    pub detail: String,
}

/// An audit log line as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// When it was recorded (whole milliseconds).
    pub ts: SystemTime,
    /// What was recorded.
    pub entry: AuditEntry,
}

/// A version of a plugin the host has seen (loaded from the plugins dir or uploaded).
///
/// Times are kept in whole milliseconds, not before 1970: that is what comes back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginVersion {
    /// The plugin's name.
    pub plugin: String,
    /// The component's digest, `sha256:<64 hex>`: with the name, what
    /// identifies the version.
    pub digest: String,
    /// Its manifest's version, if it has a manifest.
    pub version: Option<String>,
    /// `tool` or `agent`.
    pub kind: String,
    /// Bytes of the component.
    pub size: u64,
    /// Where it came from: `dir` or `upload`.
    pub source: String,
    /// When the host first saw it.
    pub created_at: SystemTime,
    /// Who added it: `host` or `admin:<user>`.
    pub created_by: String,
    /// When it last became the active version, if it ever did.
    pub activated_at: Option<SystemTime>,
}

/// Which version of a plugin is active and whether it is enabled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginState {
    /// The plugin's name.
    pub plugin: String,
    /// The digest of its active version, if one was activated.
    pub active: Option<String>,
    /// Whether it is enabled.
    pub enabled: bool,
}

/// `t` as Unix milliseconds; times before 1970 are clamped to 0.
pub(crate) fn to_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Unix milliseconds as a time; negative values are clamped to the epoch.
pub(crate) fn from_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// `n` as an SQLite integer.
pub(crate) fn to_i64(n: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Invalid(format!("{what} {n} exceeds i64")))
}

/// The current time as Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    to_ms(SystemTime::now())
}

/// Checks that `end` can end run `run_id`: its status is not `Running` and
/// its usage fits SQLite integers, which it returns as such.
pub(crate) fn checked_end(run_id: &str, end: &RunEnd) -> Result<Option<(i64, i64)>, StoreError> {
    if end.status == RunStatus::Running {
        return Err(StoreError::Invalid(format!(
            "run {run_id} cannot end with status running"
        )));
    }
    end.usage
        .map(|u| {
            Ok((
                to_i64(u.prompt_tokens, "prompt tokens")?,
                to_i64(u.completion_tokens, "completion tokens")?,
            ))
        })
        .transpose()
}

/// A limit as an SQLite integer (`LIMIT` of more than `i64::MAX` is no limit).
pub(crate) fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
