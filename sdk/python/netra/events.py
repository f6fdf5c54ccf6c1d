"""Progress an agent reports while it runs (agent plugins only). The host
turns each call into a run event streamed to the client."""

from . import _bindings


def thinking(text):
    """Reports a step of reasoning, shown to the user as the agent's thoughts."""
    _bindings.require("events").thinking(str(text))


def message_delta(text):
    """Appends text to the answer the user sees being written."""
    _bindings.require("events").message_delta(str(text))
