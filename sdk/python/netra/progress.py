"""Progress a tool or agent reports while it works.

Over MCP, a client that asked for progress gets each report as a
`notifications/progress`; the host rate-limits them.
"""

from . import _bindings


def report(text, fraction=None):
    """Reports a step: `text` says what is happening, `fraction` (0.0 to 1.0)
    how much of the work is done, when known (values outside are ignored by
    the host)."""
    if fraction is not None:
        fraction = float(fraction)
    _bindings.require("progress").report(str(text), fraction)
