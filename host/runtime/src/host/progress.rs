//! `netra:plugin/progress`: a call's progress reports go to whoever follows
//! the call (an MCP client asking for progress); without one, to tracing.

use crate::bindings::progress::Host;
use crate::host::GuestCtx;
use crate::host::log::truncate;

/// Longest report text kept.
const MAX_TEXT: usize = 1024;

impl Host for GuestCtx {
    fn report(&mut self, text: String, fraction: Option<f32>) {
        let text = truncate(&text, MAX_TEXT);
        // NaN and values out of range say nothing; they are dropped.
        let fraction = fraction.filter(|f| (0.0..=1.0).contains(f));
        match &self.observer {
            Some(observer) => observer.progress(text, fraction),
            None => {
                let plugin = &*self.plugin.name;
                tracing::debug!(target: "netra::guest", plugin, ?fraction, "progress: {text}");
            }
        }
    }
}
