//! The only place the host runs `bindgen!` over `wit/`.
//!
//! Both worlds share their imported interfaces: the agent world is generated
//! first and the tool world reuses its interface modules through `with`, so
//! every host trait exists once.

mod generated {
    pub mod agent {
        wasmtime::component::bindgen!({
            path: "../../wit",
            world: "netra:plugin/agent-plugin",
            imports: {
                "netra:plugin/kv": async,
                "netra:plugin/tools": async,
                "netra:plugin/llm": async,
                "netra:plugin/events": async,
                "netra:plugin/interaction": async,
                default: tracing,
            },
            exports: { default: async },
        });
    }

    pub mod tool {
        wasmtime::component::bindgen!({
            path: "../../wit",
            world: "netra:plugin/tool-plugin",
            exports: { default: async },
            with: {
                "netra:plugin/types": super::agent::netra::plugin::types,
                "netra:plugin/log": super::agent::netra::plugin::log,
                "netra:plugin/config": super::agent::netra::plugin::config,
                "netra:plugin/kv": super::agent::netra::plugin::kv,
                "netra:plugin/progress": super::agent::netra::plugin::progress,
                "netra:plugin/interaction": super::agent::netra::plugin::interaction,
            },
        });
    }
}

pub(crate) use generated::agent::AgentPluginPre;
pub(crate) use generated::agent::netra::plugin::{
    config, events, interaction, kv, llm, log, progress, tools,
};
pub(crate) use generated::tool as generated_tool;
pub(crate) use generated::tool::ToolPluginPre;

pub use generated::agent::netra::plugin::interaction::AskError;
pub use generated::agent::netra::plugin::types::{
    AgentDescriptor, AgentError, Message, Role, RunContext, ToolDescriptor, ToolError,
};

/// The interface names a component must export to be a plugin of each world.
pub(crate) const TOOL_EXPORT: &str = "netra:plugin/tool@0.1.0";
pub(crate) const AGENT_EXPORT: &str = "netra:plugin/agent@0.1.0";
