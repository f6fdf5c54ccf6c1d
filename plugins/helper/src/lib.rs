//! The `helper` agent: a demo that answers without a language model.
//!
//! It reads the request with a few fixed rules ([`route`]), calls one of the
//! `calculate`, `now`, `slugify`, `text_stats` and `note_*` tools, and words
//! the tool's result as an answer ([`answer`]). Both modules are plain Rust so that the
//! rules are tested on the host; this file only talks to the host.

mod answer;
mod route;

use netra_sdk::{Agent, AgentError, Context, Message, events, log, tools};

struct Helper;

impl Agent for Helper {
    const NAME: &'static str = "helper";
    const DESCRIPTION: &'static str = "A demo agent without a language model: routes \
         arithmetic, time and text questions to tools.";

    fn run(_ctx: &Context, input: String, _history: Vec<Message>) -> Result<String, AgentError> {
        let route = route::route(&input);
        // The version lets a client tell which build of the helper answered,
        // for example after a new version has been hot-loaded.
        events::thinking(format!(
            "{} (helper {})",
            route.plan(),
            env!("CARGO_PKG_VERSION")
        ));
        let answer = match route.tool_call() {
            Some((tool, arguments)) => {
                log::debug(format!("calling `{tool}` with {arguments}"));
                answer::from_tool(&route, tools::call(tool, &arguments))?
            }
            None => answer::HELP.to_owned(),
        };
        for chunk in answer::chunks(&answer) {
            events::message_delta(chunk);
        }
        Ok(answer)
    }
}

netra_sdk::export_agent!(Helper);
