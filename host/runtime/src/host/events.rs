//! `netra:plugin/events`: an agent's progress, handed to the run's host.

use crate::bindings::events::Host;
use crate::host::GuestCtx;

/// Longest text one event may carry; longer texts are cut.
const MAX_EVENT_TEXT: usize = 64 * 1024;

impl Host for GuestCtx {
    async fn thinking(&mut self, text: String) {
        if let Some(agent) = &self.agent {
            agent.thinking(cut(text));
            agent.clone().settle().await;
        }
    }

    async fn message_delta(&mut self, text: String) {
        if let Some(agent) = &self.agent {
            agent.message_delta(cut(text));
            agent.clone().settle().await;
        }
    }
}

fn cut(mut text: String) -> String {
    let len = super::log::truncate(&text, MAX_EVENT_TEXT).len();
    text.truncate(len);
    text
}
