//! Values the operator configured for this plugin.
//!
//! These come from the `config` table of the plugin's section in netra.toml; a
//! plugin sees only its own values.

/// Returns the value of `key`, or `None` when the operator did not set it.
pub fn get(key: &str) -> Option<String> {
    crate::bindings::netra::plugin::config::get(key)
}
