"""The tools an agent may call (agent plugins only). The host lists and calls
only the tools the operator granted to the agent (and its manifest lists in
`[needs] tools`), each call in a fresh instance of the tool's plugin."""

import json

from . import _bindings
from ._types import ToolDescriptor
from .errors import ToolError


def list():  # noqa: A001 - mirrors the WIT function's name
    """The descriptors (`netra.ToolDescriptor`) of the tools this agent may call."""
    return [ToolDescriptor.from_wit(d) for d in _bindings.require("tools").list()]


def call(name, arguments=None):
    """Calls the tool `name` with `arguments` (a dict, encoded as JSON) and
    returns its decoded JSON result.

    Raises `netra.ToolError` when the call fails: check `error.kind`
    (`not-found` when the agent was not granted the tool, `invalid-arguments`,
    `failed`, `timeout`, ...) and `error.message`. Left uncaught in an agent, it
    fails the run.
    """
    try:
        encoded = json.dumps({} if arguments is None else arguments, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ToolError.invalid_arguments(f"the arguments cannot be encoded as JSON: {error}")
    try:
        result = _bindings.require("tools").call(name, encoded)
    except _bindings.Err as error:
        raise ToolError.from_wit(error.value) from None
    try:
        return json.loads(result)
    except ValueError as error:
        raise ToolError.failed(f"tool `{name}` returned a result that is not JSON: {error}")
