//! The tools an agent may call.
//!
//! The host lists and calls only the tools the operator granted to the agent,
//! each call in a fresh instance of the tool's plugin.

use serde::Serialize;

use crate::bindings::netra::plugin::tools;
use crate::{ToolDescriptor, ToolError};

/// Returns the descriptors of the tools this agent may call.
pub fn list() -> Vec<ToolDescriptor> {
    tools::list()
        .into_iter()
        .map(ToolDescriptor::from)
        .collect()
}

/// Calls the tool `name` with `arguments` encoded as JSON, and returns its JSON
/// result.
///
/// Arguments that cannot be encoded are reported as
/// [`ToolError::InvalidArguments`] without calling the host; a result that is
/// not JSON as [`ToolError::Failed`].
pub fn call(name: &str, arguments: &impl Serialize) -> Result<serde_json::Value, ToolError> {
    let arguments = serde_json::to_string(arguments)
        .map_err(|error| ToolError::InvalidArguments(error.to_string()))?;
    let result = tools::call(name, &arguments)?;
    serde_json::from_str(&result).map_err(|error| {
        ToolError::Failed(format!(
            "tool `{name}` returned a result that is not JSON: {error}"
        ))
    })
}
