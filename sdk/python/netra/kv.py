"""A small key-value store, scoped by the host to the (user, plugin) pair of
the current call: whatever key a plugin passes, it cannot reach another
user's or another plugin's values. Needs `kv = true` in the manifest's
`[needs]` and the operator's grant; otherwise every call raises a `denied`
KvError.

Every function raises `netra.KvError` on failure. Raised out of a tool, it
becomes a `denied` or `failed` tool error; out of an agent, `unavailable` or
`failed`.
"""

import json

from . import _bindings
from .errors import KvError

_KINDS = {
    "KvError_Denied": "denied",
    "KvError_TooLarge": "too-large",
    "KvError_Unavailable": "unavailable",
}


def _host(operation, *args):
    try:
        return operation(*args)
    except _bindings.Err as error:
        value = error.value
        kind = _KINDS.get(type(value).__name__, "unavailable")
        raise KvError(getattr(value, "value", str(value)), kind) from None


def get(key):
    """The bytes stored under `key`, or None."""
    return _host(_bindings.require("kv").get, key)


def set(key, value):
    """Stores `value` (bytes, or a str stored as UTF-8) under `key`, replacing
    any earlier value."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    return _host(_bindings.require("kv").set, key, bytes(value))


def delete(key):
    """Removes `key`; returns whether it existed."""
    return _host(_bindings.require("kv").delete, key)


def list_keys(prefix=""):
    """The keys that start with `prefix`, in lexicographic order."""
    return _host(_bindings.require("kv").list_keys, prefix)


def get_json(key, default=None):
    """The JSON value stored under `key`, decoded, or `default`."""
    stored = get(key)
    if stored is None:
        return default
    try:
        return json.loads(stored)
    except ValueError as error:
        raise KvError(f"the value of `{key}`: {error}", "encoding") from None


def set_json(key, value):
    """Stores `value` as JSON under `key`."""
    try:
        encoded = json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as error:
        raise KvError(f"the value for `{key}`: {error}", "encoding") from None
    set(key, encoded)
