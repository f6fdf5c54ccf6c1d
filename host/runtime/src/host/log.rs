//! `netra:plugin/log`: guest log lines go to tracing, tagged with the plugin.

use crate::bindings::log::{Host, Level};
use crate::host::{GuestCtx, LogLevel};

/// Longest message kept; a guest cannot flood the logs with one call.
const MAX_MESSAGE: usize = 8 * 1024;

impl Host for GuestCtx {
    fn log(&mut self, level: Level, message: String) {
        let message = truncate(&message, MAX_MESSAGE);
        let plugin = &*self.plugin.name;
        match level {
            Level::Trace => tracing::trace!(target: "netra::guest", plugin, "{message}"),
            Level::Debug => tracing::debug!(target: "netra::guest", plugin, "{message}"),
            Level::Info => tracing::info!(target: "netra::guest", plugin, "{message}"),
            Level::Warn => tracing::warn!(target: "netra::guest", plugin, "{message}"),
            Level::Error => tracing::error!(target: "netra::guest", plugin, "{message}"),
        }
        if let Some(observer) = &self.observer {
            let level = match level {
                Level::Trace => LogLevel::Trace,
                Level::Debug => LogLevel::Debug,
                Level::Info => LogLevel::Info,
                Level::Warn => LogLevel::Warn,
                Level::Error => LogLevel::Error,
            };
            observer.log(level, message);
        }
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary.
pub(crate) fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(super::truncate("héllo", 2), "h");
        assert_eq!(super::truncate("héllo", 3), "hé");
        assert_eq!(super::truncate("abc", 10), "abc");
    }
}
