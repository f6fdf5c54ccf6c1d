"""The `pyagent` agent plugin, written in Python: answers arithmetic questions
by calling the `calculate` tool (plugins/calculator), without a language model.

    python3 sdk/python/build.py plugins/pyagent -o target/guests/py/pyagent.wasm
"""

import json
import re

import netra
from netra import AgentError, ToolError, agent

HELP = (
    'I am pyagent, a demo agent written in Python. I answer arithmetic such as '
    '"what is 2+3*4" or "(1+2)^3" with the calculate tool; anything else gets '
    "this help."
)

# Stretches of the characters an arithmetic expression is made of.
STRETCH = re.compile(r"[0-9+\-*/%^.()\s]+")
# An operator with an operand on each side: `2+3` and `(1)*-2`, not `-3`.
BINARY = re.compile(r"[0-9.)]\s*[+\-*/%^]\s*[-+(]*\s*[0-9.(]")


def tidy(text):
    """Trims what cannot start or end an expression: spaces, dangling
    operators, a sentence's full stop, parentheses without their partner."""
    while True:
        before = text
        text = text.strip()
        opens, closes = text.count("("), text.count(")")
        if text and text[-1] in "+-*/%^(.":
            text = text[:-1]
        elif text and text[0] in "*/%^)":
            text = text[1:]
        elif closes > opens and text.endswith(")"):
            text = text[:-1]
        elif opens > closes and text.startswith("("):
            text = text[1:]
        if text == before:
            return text


def expression(text):
    """The longest arithmetic expression in `text`, or None."""
    candidates = [tidy(match.group()) for match in STRETCH.finditer(text)]
    candidates = [c for c in candidates if BINARY.search(c)]
    return max(candidates, key=len, default=None)


def plain(value):
    """A JSON value as a person would write it: strings without quotes."""
    return value if isinstance(value, str) else json.dumps(value)


def calculate(expr):
    """The answer for `expr`, from the calculate tool."""
    try:
        result = netra.tools.call("calculate", {"expression": expr})
    except ToolError as error:
        if error.kind in ("denied", "not-found"):
            raise AgentError.unavailable(
                f"the `calculate` tool is not available to this agent: {error.message}"
            ) from None
        if error.kind == "cancelled":
            raise AgentError.cancelled() from None
        if error.kind == "timeout":
            return "I couldn't calculate that: the calculate tool took too long to answer."
        return f"I couldn't calculate that: {error.message}"
    return f"{expr} = {plain(result)}"


def chunks(text):
    """`text` cut after each run of spaces, for streaming word by word."""
    return re.findall(r"\S+\s*|\s+", text)


@agent(name="pyagent", description="A demo agent written in Python: answers arithmetic with the calculate tool.")
def run(ctx, input, history):
    expr = expression(input)
    if expr is None:
        netra.events.thinking("No arithmetic in the request: answering with help.")
        answer = HELP
    else:
        netra.events.thinking(f"Calculating {expr} with the calculate tool.")
        netra.log.debug(f"run {ctx.run_id}: calculate {expr!r}")
        answer = calculate(expr)
    for chunk in chunks(answer):
        netra.events.message_delta(chunk)
    return answer


Agent = netra.agent_plugin()
