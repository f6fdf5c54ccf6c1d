//! Structured logging into the host's tracing, tagged with the plugin and run.
//!
//! Long messages are truncated by the host. Anything a plugin prints to stdout
//! or stderr also reaches the host's logs, but without a level.

use crate::bindings::netra::plugin::log::{Level, log};

/// Logs very detailed diagnostics.
pub fn trace(message: impl AsRef<str>) {
    log(Level::Trace, message.as_ref());
}

/// Logs diagnostics for developers.
pub fn debug(message: impl AsRef<str>) {
    log(Level::Debug, message.as_ref());
}

/// Logs normal operation.
pub fn info(message: impl AsRef<str>) {
    log(Level::Info, message.as_ref());
}

/// Logs something unexpected that the plugin handled.
pub fn warn(message: impl AsRef<str>) {
    log(Level::Warn, message.as_ref());
}

/// Logs a failure.
pub fn error(message: impl AsRef<str>) {
    log(Level::Error, message.as_ref());
}
