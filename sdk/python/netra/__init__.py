"""The Python SDK for netra plugins.

A netra plugin is a WebAssembly component that exports tools or an agent (the
`tool-plugin` and `agent-plugin` worlds of `wit/plugin.wit`); componentize-py
builds it from a Python module. This package hides the generated bindings:

    import netra
    from netra import tool

    @tool(description="Says hello.")
    def greet(name: str) -> dict:
        return {"greeting": f"Hello, {name}!"}

    Tool = netra.tool_plugin()

An agent is one function, exported the same way:

    @netra.agent(name="echo", description="Repeats the input.")
    def run(ctx, input, history):
        netra.events.message_delta(input)
        return input

    Agent = netra.agent_plugin()

The host's functions are plain modules: `log`, `config`, `kv`, `progress` and
`interaction` everywhere, and `events`, `tools` and `llm` in agents.

componentize-py snapshots the module when it builds the component, and the
component can import at run time only what was imported then: import
everything at the top of the module, never inside a function.
"""

from . import config, events, interaction, kv, llm, log, progress, tools
from ._agent import agent, agent_plugin
from ._tool import tool, tool_plugin
from ._types import Context, Message, ToolDescriptor
from .errors import AgentError, AskError, KvError, LlmError, ToolError

__all__ = [
    "AgentError",
    "AskError",
    "Context",
    "KvError",
    "LlmError",
    "Message",
    "ToolDescriptor",
    "ToolError",
    "agent",
    "agent_plugin",
    "config",
    "events",
    "interaction",
    "kv",
    "llm",
    "log",
    "progress",
    "tool",
    "tool_plugin",
    "tools",
]
