//! The [`Agent`] trait.

use crate::{AgentError, Context, Message};

/// An agent: runs one conversation turn and returns the final answer.
///
/// Export it with [`export_agent!`](crate::export_agent). While it runs, an agent
/// reports progress with [`events`](crate::events), calls the tools it was
/// granted with [`tools`](crate::tools) and asks a model with [`llm`](crate::llm).
pub trait Agent {
    /// The agent's name, unique on the host: lowercase ASCII letters, digits,
    /// `_` and `-`, at most 64 characters.
    const NAME: &'static str;
    /// One or two sentences shown to users choosing an agent.
    const DESCRIPTION: &'static str;

    /// Runs one turn: `input` is the user's message, `history` the thread's
    /// earlier messages, oldest first.
    fn run(ctx: &Context, input: String, history: Vec<Message>) -> Result<String, AgentError>;
}
