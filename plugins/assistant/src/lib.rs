//! The `assistant` agent: a tool-calling loop over the language model the
//! operator grants it (see the `tool-loop` crate for the loop and its config
//! keys).

use netra_sdk::{Agent, AgentError, Context, Message};

struct Assistant;

/// The system prompt unless `system_prompt` is configured.
const SYSTEM_PROMPT: &str = "You are a helpful assistant. Use the tools you are given when \
     they help answer the question; answer concisely.";

impl Agent for Assistant {
    const NAME: &'static str = "assistant";
    const DESCRIPTION: &'static str = "Answers with the operator's language model, calling \
         its tools when they help.";

    fn run(_ctx: &Context, input: String, history: Vec<Message>) -> Result<String, AgentError> {
        tool_loop::run(SYSTEM_PROMPT, input, &history)
    }
}

netra_sdk::export_agent!(Assistant);
