"""Questions a tool or agent asks whoever its call is for, and waits for.

Over MCP, `ask` reaches the client's user (`elicitation/create`) and `sample`
the client's model (`sampling/createMessage`). While a question waits, the
call's deadline stands still; the host bounds the wait by the `timeout` given
here (seconds; 0: none of its own) and by its own limit (`ask_wait`).

Every function raises `netra.AskError` when no answer comes. Raised out of a
tool, a declined question denies the call, a cancelled or timed-out one ends it
as such, anything else fails it.
"""

import json

from . import _bindings
from ._types import Message, role_to_wit
from .errors import AskError

_KINDS = {
    "AskError_Declined": "declined",
    "AskError_Cancelled": "cancelled",
    "AskError_Timeout": "timeout",
    "AskError_Unsupported": "unsupported",
    "AskError_Invalid": "invalid",
    "AskError_Failed": "failed",
}


def _host(operation, *args):
    try:
        return operation(*args)
    except _bindings.Err as error:
        value = error.value
        kind = _KINDS.get(type(value).__name__, "failed")
        raise AskError(getattr(value, "value", ""), kind) from None


def _millis(timeout):
    return max(0, min(int(float(timeout) * 1000), 2**32 - 1))


def ask(prompt, schema=None, timeout=0):
    """Asks the user `prompt` and returns the answer, decoded from JSON.

    `schema` is a JSON Schema (a dict) of the answer: an object of string,
    number, integer, boolean and enum properties (the answer is then such a
    dict), or one such property's schema (the answer is then that value).
    Without one the user is asked for free text (the answer is a str).
    """
    text = None if schema is None else json.dumps(schema)
    answer = _host(_bindings.require("interaction").ask, str(prompt), text, _millis(timeout))
    return json.loads(answer)


def sample(messages, max_tokens, timeout=0):
    """Asks the client's language model to continue `messages` (a list of
    `netra.Message`, or of (role, text) pairs; system messages become its
    system prompt) in at most `max_tokens`; returns the text it wrote."""
    types = _bindings.require("types")
    wit = []
    for message in messages:
        role, content = (
            (message.role, message.content) if isinstance(message, Message) else message
        )
        wit.append(types.Message(role=role_to_wit(role), content=str(content)))
    return _host(
        _bindings.require("interaction").sample, wit, int(max_tokens), _millis(timeout)
    )
