"""Structured logging into the host's tracing, tagged with the plugin and run.

Long messages are truncated by the host. What a plugin prints also reaches
the host's logs, but without a level.
"""

from . import _bindings


def _log(level, message):
    binding = _bindings.require("log")
    binding.log(getattr(binding.Level, level), str(message))


def trace(message):
    """Logs very detailed diagnostics."""
    _log("TRACE", message)


def debug(message):
    """Logs diagnostics for developers."""
    _log("DEBUG", message)


def info(message):
    """Logs normal operation."""
    _log("INFO", message)


def warn(message):
    """Logs something unexpected that the plugin handled."""
    _log("WARN", message)


def error(message):
    """Logs a failure."""
    _log("ERROR", message)
