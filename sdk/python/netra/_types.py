"""Plain Python values for the WIT records a plugin sees."""

from dataclasses import dataclass
from typing import Optional

from . import _bindings


@dataclass(frozen=True)
class Context:
    """Who a call is made for. Use it for logging; the host enforces all scoping
    itself and never trusts these values back."""

    user_id: str = ""
    thread_id: str = ""
    run_id: str = ""

    @classmethod
    def from_wit(cls, ctx):
        return cls(ctx.user_id, ctx.thread_id, ctx.run_id)


# WIT `role` names, by the generated enum's member names.
_ROLES = ("system", "user", "assistant", "tool")


def role_name(role):
    """`user` for the WIT `role.user`, and so on."""
    return role.name.lower()


def role_to_wit(name):
    """The WIT `role` for `user`, `assistant`, `system` or `tool`."""
    if name not in _ROLES:
        raise ValueError(f"{name!r} is not a role; use one of {_ROLES}")
    return _bindings.require("types").Role[name.upper()]


@dataclass(frozen=True)
class Message:
    """One message of a thread's history: `role` is `system`, `user`,
    `assistant` or `tool`."""

    role: str
    content: str

    @classmethod
    def from_wit(cls, message):
        return cls(role_name(message.role), message.content)


@dataclass(frozen=True)
class ToolDescriptor:
    """What a tool is and how to call it. The schemas are JSON text, as they
    travel; `json.loads` them to inspect them."""

    name: str
    description: str
    input_schema: str
    output_schema: Optional[str] = None

    @classmethod
    def from_wit(cls, descriptor):
        return cls(
            descriptor.name,
            descriptor.description,
            descriptor.input_schema,
            descriptor.output_schema,
        )

    def to_wit(self):
        return _bindings.require("types").ToolDescriptor(
            self.name, self.description, self.input_schema, self.output_schema
        )
