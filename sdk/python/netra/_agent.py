"""Agents: the `@agent` decorator, and the class that exports it."""

import traceback

from . import _bindings, log
from ._tool import check_name, docstring_summary
from ._types import Context, Message
from .errors import AgentError, as_agent_error, describe_exception

# The registered agent: (name, description, function), or None.
_AGENT = None


def agent(fn=None, *, name, description=None):
    """Registers `fn(ctx, input, history) -> str` as the plugin's agent.

    `ctx` is the run's `netra.Context`, `input` the user's message, `history`
    the thread's earlier messages (`netra.Message`, oldest first); it returns
    the final answer. `description` defaults to the first paragraph of the
    docstring. A plugin has exactly one agent.
    """

    def register(fn):
        global _AGENT
        check_name(name, "agent")
        if _AGENT is not None:
            raise ValueError(
                f"a plugin has one agent, and {_AGENT[0]!r} is already registered"
            )
        text = docstring_summary(fn) if description is None else description
        if not text:
            raise ValueError(
                f"agent {name!r} has no description: pass description=... or "
                "give the function a docstring"
            )
        _AGENT = (name, text, fn)
        return fn

    return register(fn) if fn is not None else register


def run(ctx, input, history):
    """Runs the registered agent, raising its exception as it came."""
    if _AGENT is None:
        raise AgentError.failed("no agent is registered")
    answer = _AGENT[2](ctx, input, history)
    if not isinstance(answer, str):
        raise TypeError(f"the agent must return a str, not {type(answer).__name__}")
    return answer


def _log_unexpected(error):
    try:
        trace = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        name = _AGENT[0] if _AGENT else "?"
        log.warn(f"agent `{name}` failed with {describe_exception(error)}\n{trace}")
    except BaseException:  # logging must not turn a failure into a trap
        pass


def agent_plugin():
    """Returns the class componentize-py exports as `netra:plugin/agent`.

    Assign it at the end of the app module: `Agent = netra.agent_plugin()`.
    The name must be `Agent`: componentize-py looks the export up by the
    interface's name.
    """
    if _AGENT is None:
        raise RuntimeError(
            "no agent: decorate the run function with @netra.agent(name=...) "
            "before calling netra.agent_plugin()"
        )

    class Agent:
        """The `netra:plugin/agent` export."""

        def describe(self):
            name, description, _ = _AGENT
            return _bindings.require("types").AgentDescriptor(name, description)

        def run(self, ctx, input, history):
            # Every exception becomes an `agent-error`: an exception that left
            # this method would trap the component.
            try:
                return run(
                    Context.from_wit(ctx),
                    input,
                    [Message.from_wit(message) for message in history],
                )
            except BaseException as error:
                if not isinstance(error, AgentError):
                    _log_unexpected(error)
                raise _bindings.Err(as_agent_error(error).to_wit()) from None

    return Agent
