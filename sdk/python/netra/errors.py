"""The errors a plugin raises, and how they become WIT `result` errors.

A tool or an agent fails by raising an exception. `ToolError` and `AgentError`
mirror the WIT `tool-error` and `agent-error` variants and are passed on as
they are; any other exception is caught by the SDK and reported as `failed`,
so that a plugin's failure is a normal error and never a trap.
"""

from . import _bindings


class ToolError(Exception):
    """Why a tool call failed; mirrors the WIT `tool-error` variant.

    Raise it from a tool (`raise ToolError.invalid_arguments("...")`), or catch
    it around `netra.tools.call`. `kind` is one of `invalid-arguments`,
    `denied`, `not-found`, `failed`, `timeout` and `cancelled`; `message` is
    empty for the last two. `ToolError("...")` alone is a `failed` error.
    """

    KINDS = ("invalid-arguments", "denied", "not-found", "failed", "timeout", "cancelled")

    def __init__(self, message="", kind="failed"):
        if kind not in self.KINDS:
            raise ValueError(f"{kind!r} is not a tool-error kind; use one of {self.KINDS}")
        super().__init__(message)
        self.kind = kind
        self.message = str(message)

    @classmethod
    def invalid_arguments(cls, message):
        """The arguments did not match the input schema or made no sense."""
        return cls(message, "invalid-arguments")

    @classmethod
    def denied(cls, message):
        """The request was understood but is not allowed."""
        return cls(message, "denied")

    @classmethod
    def not_found(cls, message):
        """No tool of that name exists."""
        return cls(message, "not-found")

    @classmethod
    def failed(cls, message):
        """The tool ran and failed."""
        return cls(message, "failed")

    @classmethod
    def timeout(cls):
        """The tool did not finish within its deadline."""
        return cls("", "timeout")

    @classmethod
    def cancelled(cls):
        """The run the call belonged to was cancelled."""
        return cls("", "cancelled")

    def __str__(self):
        if self.kind == "timeout":
            return "timed out"
        if self.kind == "cancelled":
            return "cancelled"
        return f"{self.kind.replace('-', ' ')}: {self.message}"

    def __repr__(self):
        return f"ToolError({self.message!r}, kind={self.kind!r})"

    def __eq__(self, other):
        if not isinstance(other, ToolError):
            return NotImplemented
        return (self.kind, self.message) == (other.kind, other.message)

    __hash__ = Exception.__hash__

    def to_wit(self):
        """The WIT `tool-error` value."""
        types = _bindings.require("types")
        if self.kind == "timeout":
            return types.ToolError_Timeout()
        if self.kind == "cancelled":
            return types.ToolError_Cancelled()
        case = {
            "invalid-arguments": types.ToolError_InvalidArguments,
            "denied": types.ToolError_Denied,
            "not-found": types.ToolError_NotFound,
            "failed": types.ToolError_Failed,
        }[self.kind]
        return case(self.message)

    @classmethod
    def from_wit(cls, error):
        """The `ToolError` for a WIT `tool-error` value."""
        types = _bindings.require("types")
        if isinstance(error, types.ToolError_Timeout):
            return cls.timeout()
        if isinstance(error, types.ToolError_Cancelled):
            return cls.cancelled()
        kind = {
            types.ToolError_InvalidArguments: "invalid-arguments",
            types.ToolError_Denied: "denied",
            types.ToolError_NotFound: "not-found",
            types.ToolError_Failed: "failed",
        }.get(type(error), "failed")
        return cls(getattr(error, "value", str(error)), kind)


class AgentError(Exception):
    """Why an agent run failed; mirrors the WIT `agent-error` variant.

    `kind` is one of `invalid-input`, `unavailable`, `failed` and `cancelled`.
    `AgentError("...")` alone is a `failed` error.
    """

    KINDS = ("invalid-input", "unavailable", "failed", "cancelled")

    def __init__(self, message="", kind="failed"):
        if kind not in self.KINDS:
            raise ValueError(f"{kind!r} is not an agent-error kind; use one of {self.KINDS}")
        super().__init__(message)
        self.kind = kind
        self.message = str(message)

    @classmethod
    def invalid_input(cls, message):
        """The input could not be handled; not worth retrying unchanged."""
        return cls(message, "invalid-input")

    @classmethod
    def unavailable(cls, message):
        """A dependency (a model, a tool) was unavailable; retrying may succeed."""
        return cls(message, "unavailable")

    @classmethod
    def failed(cls, message):
        """The agent failed for another reason."""
        return cls(message, "failed")

    @classmethod
    def cancelled(cls):
        """The agent noticed the run was cancelled and stopped."""
        return cls("", "cancelled")

    def __str__(self):
        if self.kind == "cancelled":
            return "cancelled"
        return f"{self.kind.replace('-', ' ')}: {self.message}"

    def __repr__(self):
        return f"AgentError({self.message!r}, kind={self.kind!r})"

    def __eq__(self, other):
        if not isinstance(other, AgentError):
            return NotImplemented
        return (self.kind, self.message) == (other.kind, other.message)

    __hash__ = Exception.__hash__

    def to_wit(self):
        """The WIT `agent-error` value."""
        types = _bindings.require("types")
        if self.kind == "cancelled":
            return types.AgentError_Cancelled()
        case = {
            "invalid-input": types.AgentError_InvalidInput,
            "unavailable": types.AgentError_Unavailable,
            "failed": types.AgentError_Failed,
        }[self.kind]
        return case(self.message)


class KvError(Exception):
    """Why a key-value operation failed: `kind` is `denied`, `too-large` or
    `unavailable` (from the host), or `encoding` (a JSON value that could not be
    encoded or decoded, from `netra.kv.get_json` and `set_json`)."""

    _WORDING = {
        "denied": "key-value access denied",
        "too-large": "key or value too large",
        "unavailable": "key-value store unavailable",
        "encoding": "key-value JSON encoding",
    }

    def __init__(self, message, kind):
        super().__init__(message)
        self.kind = kind
        self.message = str(message)

    def __str__(self):
        return f"{self._WORDING.get(self.kind, self.kind)}: {self.message}"


class LlmError(Exception):
    """Why a chat completion failed: `kind` is `rate-limited`, `unavailable`,
    `invalid-request` or `denied`."""

    def __init__(self, message, kind):
        super().__init__(message)
        self.kind = kind
        self.message = str(message)

    def __str__(self):
        return f"model {self.kind.replace('-', ' ')}: {self.message}"


class AskError(Exception):
    """Why a question (`netra.interaction`) got no answer: `kind` is
    `declined`, `cancelled`, `timeout`, `unsupported`, `invalid` or `failed`."""

    _WORDING = {
        "declined": "the user declined to answer",
        "cancelled": "the question was cancelled",
        "timeout": "no answer came in time",
        "unsupported": "cannot ask",
        "invalid": "invalid question",
        "failed": "the question failed",
    }

    def __init__(self, message, kind):
        super().__init__(message)
        self.kind = kind
        self.message = str(message)

    def __str__(self):
        wording = self._WORDING.get(self.kind, self.kind)
        return f"{wording}: {self.message}" if self.message else wording


def describe_exception(error):
    """`Type: message`, the way an unexpected exception is reported."""
    message = str(error)
    name = type(error).__name__
    return f"{name}: {message}" if message else name


def as_tool_error(error):
    """The `ToolError` a tool's exception is reported as.

    A `KvError` keeps a denial a denial (as the Rust SDK does); an `AskError`
    denies the call when the user declined, and ends it as cancelled or timed
    out when the question was; every other exception is `failed` with
    `Type: message`.
    """
    if isinstance(error, ToolError):
        return error
    if isinstance(error, KvError):
        return ToolError(str(error), "denied" if error.kind == "denied" else "failed")
    if isinstance(error, AskError):
        if error.kind == "cancelled":
            return ToolError.cancelled()
        if error.kind == "timeout":
            return ToolError.timeout()
        return ToolError(str(error), "denied" if error.kind == "declined" else "failed")
    return ToolError.failed(describe_exception(error))


def as_agent_error(error):
    """The `AgentError` an agent's exception is reported as.

    As in the Rust SDK: a tool that timed out, an unreachable store or model is
    `unavailable` (retrying may succeed); a cancelled tool call cancels the
    run; everything else is `failed`.
    """
    if isinstance(error, AgentError):
        return error
    if isinstance(error, ToolError):
        if error.kind == "timeout":
            return AgentError.unavailable(f"tool call {error}")
        if error.kind == "cancelled":
            return AgentError.cancelled()
        return AgentError.failed(f"tool call {error}")
    if isinstance(error, KvError):
        kind = "unavailable" if error.kind == "unavailable" else "failed"
        return AgentError(str(error), kind)
    if isinstance(error, LlmError):
        kind = "unavailable" if error.kind in ("rate-limited", "unavailable") else "failed"
        return AgentError(str(error), kind)
    if isinstance(error, AskError):
        if error.kind == "cancelled":
            return AgentError.cancelled()
        return AgentError.failed(str(error))
    return AgentError.failed(describe_exception(error))
