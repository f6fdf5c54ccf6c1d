"""The only module that imports the bindings componentize-py generates.

componentize-py writes a `wit_world` package for the world a plugin is built
for, and a component can import at run time only the modules that were already
imported when it was built. So every binding module is imported here, once, at
import time; those the world lacks (a tool plugin has no `events`, `tools` or
`llm`) are `None`, and `require` turns a use of one into a clear error.

Outside a component (in the SDK's own tests, say) `wit_world` does not exist
and every module is `None`.
"""

try:
    from componentize_py_types import Err
except ImportError:  # not inside componentize-py

    class Err(Exception):  # type: ignore[no-redef]
        """Stands in for componentize-py's `Err` outside a component."""

        def __init__(self, value):
            super().__init__(value)
            self.value = value


def _optional(name):
    try:
        module = __import__("wit_world.imports." + name, fromlist=[name])
    except ImportError:
        return None
    return module


types = _optional("types")
log = _optional("log")
config = _optional("config")
kv = _optional("kv")
progress = _optional("progress")
interaction = _optional("interaction")
events = _optional("events")
tools = _optional("tools")
llm = _optional("llm")

# The world each optional interface belongs to, for the error message.
_WORLD_OF = {
    "types": "tool-plugin or agent-plugin",
    "log": "tool-plugin or agent-plugin",
    "config": "tool-plugin or agent-plugin",
    "kv": "tool-plugin or agent-plugin",
    "progress": "tool-plugin or agent-plugin",
    "interaction": "tool-plugin or agent-plugin",
    "events": "agent-plugin",
    "tools": "agent-plugin",
    "llm": "agent-plugin",
}


def require(name):
    """Returns the binding module `name`, or raises a RuntimeError naming the
    world that has it."""
    module = globals()[name]
    if module is None:
        raise RuntimeError(
            f"netra.{name} is not available here: it needs a component built for "
            f"the {_WORLD_OF[name]} world (netra:plugin/{name} is not imported)"
        )
    return module
