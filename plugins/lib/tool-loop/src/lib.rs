//! The tool-calling loop of the `assistant` and `supervisor` agents.
//!
//! Each step sends the conversation (a system prompt, the thread's history,
//! the input, and every tool call and result so far) with the descriptors of
//! the agent's tools to the model. When the model asks for tools, the agent
//! calls them through the host (which emits `tool_executing` /
//! `tool_completed`; an agent granted as a tool runs as a nested run) and
//! feeds the results back; when it answers, that is the run's output (the
//! host has streamed its tokens to the client already). A run stops with an
//! error after `max_steps` steps.
//!
//! Config keys (`[plugin.NAME.config]`): `model` (else the provider's
//! default), `max_steps` (default 8), `system_prompt`.

pub mod conversation;

use netra_sdk::llm::{self, ChatRequest, LlmError};
use netra_sdk::{AgentError, Message, config, events, tools};

use conversation::Conversation;

/// Model calls per run when `max_steps` is not configured.
pub const DEFAULT_MAX_STEPS: u32 = 8;

/// Runs the loop on `input` after `history`, with `system_prompt` unless the
/// operator configured another.
pub fn run(system_prompt: &str, input: String, history: &[Message]) -> Result<String, AgentError> {
    let max_steps = config::get("max_steps")
        .and_then(|n| n.trim().parse::<u32>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_MAX_STEPS);
    let model = config::get("model").filter(|m| !m.trim().is_empty());
    let system = config::get("system_prompt")
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| system_prompt.to_owned());
    let mut conversation = Conversation::new(system, history, input);
    let descriptors: Vec<llm::ToolDescriptor> = tools::list().into_iter().map(Into::into).collect();
    for step in 1..=max_steps {
        let request = ChatRequest {
            model: model.clone(),
            messages: conversation.messages().to_vec(),
            tools: descriptors.clone(),
            temperature: None,
            max_tokens: None,
        };
        let response = llm::chat(&request).map_err(failure)?;
        if response.tool_calls.is_empty() {
            return Ok(response.content);
        }
        events::thinking(format!(
            "step {step}: calling {}",
            response
                .tool_calls
                .iter()
                .map(|call| call.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let calls = response.tool_calls.clone();
        conversation.assistant(response);
        for call in calls {
            let result = match serde_json::from_str::<serde_json::Value>(&call.arguments) {
                Ok(arguments) => match tools::call(&call.name, &arguments) {
                    Ok(value) => value.to_string(),
                    Err(err) => format!("error: {err}"),
                },
                Err(err) => format!("error: the arguments are not JSON: {err}"),
            };
            conversation.tool_result(call.id, result);
        }
    }
    Err(AgentError::Failed(format!(
        "no final answer after {max_steps} model calls (config max_steps)"
    )))
}

/// A model failure as the run's error: the provider being down or rate
/// limiting is worth a retry, a rejected request is not.
fn failure(err: LlmError) -> AgentError {
    match err {
        LlmError::RateLimited(why) => AgentError::Unavailable(format!("rate limited: {why}")),
        LlmError::Unavailable(why) => AgentError::Unavailable(format!("model unavailable: {why}")),
        LlmError::InvalidRequest(why) => {
            AgentError::Failed(format!("model rejected the request: {why}"))
        }
        LlmError::Denied(why) => AgentError::Failed(format!("no model: {why}")),
    }
}
