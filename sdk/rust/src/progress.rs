//! Progress a tool or agent reports while it works.
//!
//! Over MCP, a client that asked for progress gets each report as a
//! `notifications/progress`; the host rate-limits them.

use crate::bindings::netra::plugin::progress;

/// Reports a step: `text` says what is happening.
pub fn report(text: impl AsRef<str>) {
    progress::report(text.as_ref(), None);
}

/// Reports a step with how much of the work is done, `fraction` from 0.0 to
/// 1.0 (values outside are ignored by the host).
pub fn report_fraction(text: impl AsRef<str>, fraction: f32) {
    progress::report(text.as_ref(), Some(fraction));
}
