//! `netra:plugin/config`: the operator's values for this plugin, read-only.

use crate::bindings::config::Host;
use crate::host::GuestCtx;

impl Host for GuestCtx {
    fn get(&mut self, key: String) -> Option<String> {
        self.plugin.config.get(&key).cloned()
    }
}
