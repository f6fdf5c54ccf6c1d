"""{{name}}: a netra tool plugin written in Python, with the `greet` tool.

Build it into a component ({{name}}.wasm, its manifest beside it) and call it:

    netra plugin build .
    netra tool call {{name}}.wasm greet '{"name": "Ada"}'
"""

import netra
from netra import ToolError, tool


@tool
def greet(name: str) -> dict:
    """Greets someone by name."""
    if not name.strip():
        raise ToolError.invalid_arguments("`name` must not be blank")
    return {"greeting": f"Hello, {name}!"}


# componentize-py exports the class bound to `Tool` as netra:plugin/tool.
Tool = netra.tool_plugin()
