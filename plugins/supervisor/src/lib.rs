//! The `supervisor` agent: splits a request into subtasks and delegates them
//! to the agents its grant lists as tools (agent-as-tool: each delegation is
//! a nested run of its own, linked to this one by `parent_run_id`), then
//! answers from their results. The loop is the `tool-loop` crate's.

use netra_sdk::{Agent, AgentError, Context, Message};

struct Supervisor;

/// The system prompt unless `system_prompt` is configured.
const SYSTEM_PROMPT: &str = "You are a supervisor. Split the request into subtasks and \
     delegate each to the agent best suited for it by calling that agent's tool with \
     {\"input\": \"the subtask\"}. When the agents have answered, combine their answers \
     into one concise reply.";

impl Agent for Supervisor {
    const NAME: &'static str = "supervisor";
    const DESCRIPTION: &'static str = "Delegates subtasks to other agents and combines their \
         answers.";

    fn run(_ctx: &Context, input: String, history: Vec<Message>) -> Result<String, AgentError> {
        tool_loop::run(SYSTEM_PROMPT, input, &history)
    }
}

netra_sdk::export_agent!(Supervisor);
