"""Chat completion with a language model chosen and granted by the operator
(agent plugins only; needs `llm = [...]` in the manifest's `[needs]`). While
a completion streams, the host forwards its tokens to the client.

    reply = netra.llm.chat(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": input}],
        tools=netra.tools.list(),
    )
    for call in reply.tool_calls:
        result = netra.tools.call(call.name, call.args())
"""

import json
from dataclasses import dataclass, field
from typing import List, Optional

from . import _bindings
from ._types import Message, ToolDescriptor, role_to_wit
from .errors import LlmError

_KINDS = {
    "LlmError_RateLimited": "rate-limited",
    "LlmError_Unavailable": "unavailable",
    "LlmError_InvalidRequest": "invalid-request",
    "LlmError_Denied": "denied",
}


@dataclass(frozen=True)
class ToolCall:
    """A tool call the model asked for; `arguments` is JSON text."""

    id: str
    name: str
    arguments: str

    def args(self):
        """The arguments decoded; `{}` when the model sent none. Raises
        ValueError when the model sent something that is not JSON."""
        return json.loads(self.arguments) if self.arguments.strip() else {}


@dataclass(frozen=True)
class ChatMessage:
    """One message sent to the model: `role` is `system`, `user`,
    `assistant` or `tool`. An assistant message may carry the tool calls it
    made; a `tool` message names the call it answers in `tool_call_id`."""

    role: str
    content: str = ""
    tool_calls: List[ToolCall] = field(default_factory=list)
    tool_call_id: Optional[str] = None


@dataclass(frozen=True)
class Reply:
    """The model's answer (already streamed to the client) and the tools it
    asks to call before it answers."""

    content: str
    tool_calls: List[ToolCall]
    prompt_tokens: int
    completion_tokens: int


def _message(message):
    if isinstance(message, ChatMessage):
        return message
    if isinstance(message, Message):
        return ChatMessage(message.role, message.content)
    if isinstance(message, dict):
        calls = [c if isinstance(c, ToolCall) else ToolCall(**c) for c in message.get("tool_calls", ())]
        return ChatMessage(
            message["role"], message.get("content", ""), calls, message.get("tool_call_id")
        )
    raise TypeError(
        f"a chat message must be a netra.llm.ChatMessage, a netra.Message or a dict, "
        f"not {type(message).__name__}"
    )


def _descriptor(tool):
    if isinstance(tool, ToolDescriptor):
        return tool.to_wit()
    raise TypeError(f"a tool must be a netra.ToolDescriptor, not {type(tool).__name__}")


def chat(messages, *, tools=(), model=None, temperature=None, max_tokens=None):
    """Runs one chat completion and returns a `Reply`.

    `messages` are `ChatMessage`s, `netra.Message`s (a run's history) or dicts
    with `role` and `content`; `tools` the `netra.ToolDescriptor`s the model
    may ask to call (`netra.tools.list()`). `model` None means the provider's
    default. Raises `netra.LlmError` (`kind` `rate-limited`, `unavailable`,
    `invalid-request` or `denied`).
    """
    binding = _bindings.require("llm")
    wit_messages = []
    for message in map(_message, messages):
        wit_messages.append(
            binding.ChatMessage(
                role=role_to_wit(message.role),
                content=message.content,
                tool_calls=[binding.ToolCall(c.id, c.name, c.arguments) for c in message.tool_calls],
                tool_call_id=message.tool_call_id,
            )
        )
    request = binding.ChatRequest(
        model=model,
        messages=wit_messages,
        tools=[_descriptor(tool) for tool in tools],
        temperature=None if temperature is None else float(temperature),
        max_tokens=max_tokens,
    )
    try:
        response = binding.chat(request)
    except _bindings.Err as error:
        value = error.value
        kind = _KINDS.get(type(value).__name__, "unavailable")
        raise LlmError(getattr(value, "value", str(value)), kind) from None
    return Reply(
        content=response.content,
        tool_calls=[ToolCall(c.id, c.name, c.arguments) for c in response.tool_calls],
        prompt_tokens=response.usage.prompt_tokens,
        completion_tokens=response.usage.completion_tokens,
    )


__all__ = ["ChatMessage", "Reply", "ToolCall", "chat"]
