//! Progress an agent reports while it runs.
//!
//! The host turns each call into a run event streamed to the client.

use crate::bindings::netra::plugin::events;

/// Reports a step of reasoning, shown to the user as the agent's thoughts.
pub fn thinking(text: impl AsRef<str>) {
    events::thinking(text.as_ref());
}

/// Appends text to the answer the user sees being written.
pub fn message_delta(text: impl AsRef<str>) {
    events::message_delta(text.as_ref());
}
