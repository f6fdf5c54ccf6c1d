"""Values the operator configured for this plugin (the `config` table of its
section in netra.toml). A plugin sees only its own values."""

from . import _bindings


def get(key, default=None):
    """The value of `key`, or `default` when the operator did not set it."""
    value = _bindings.require("config").get(key)
    return default if value is None else value
