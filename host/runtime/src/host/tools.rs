//! `netra:plugin/tools`: an agent lists and calls the tools its run may use.
//! The run's host decides which tools those are and emits the tool events.

use crate::bindings::tools::Host;
use crate::bindings::{ToolDescriptor, ToolError};
use crate::host::GuestCtx;

impl Host for GuestCtx {
    async fn list(&mut self) -> Vec<ToolDescriptor> {
        match &self.agent {
            Some(agent) => agent.list_tools(),
            None => Vec::new(),
        }
    }

    async fn call(&mut self, name: String, arguments: String) -> Result<String, ToolError> {
        match &self.agent {
            Some(agent) => agent.clone().call_tool(name, arguments).await,
            None => Err(ToolError::Denied(
                "tools are only available to agents".into(),
            )),
        }
    }
}
