//! Who a call is made for, and the messages of a conversation.

/// Who a tool call or agent run is made for.
///
/// Use it for logging and for naming things per user or thread. The host
/// enforces all scoping itself (the key-value store, for instance, is already
/// per user), and never trusts these values when they come back from a plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Context {
    /// The authenticated user the run belongs to.
    pub user_id: String,
    /// The conversation thread of the run.
    pub thread_id: String,
    /// The run, unique across the host.
    pub run_id: String,
}

/// The author of a [`Message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Instructions from the operator or the agent itself.
    System,
    /// The human user.
    User,
    /// The agent.
    Assistant,
    /// The output of a tool call.
    Tool,
}

/// One message of a thread's history, as handed to [`Agent::run`](crate::Agent::run).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// Its text.
    pub content: String,
}
