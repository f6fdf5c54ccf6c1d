"""Tools: the `@tool` decorator, and the class that exports them."""

import dataclasses
import gc
import inspect
import json
import re
import traceback
import typing

from . import _bindings, log
from ._types import Context, ToolDescriptor
from .errors import ToolError, as_tool_error, describe_exception

_NAME = re.compile(r"[a-z0-9_-]{1,64}")
_NAME_RULE = "lowercase ASCII letters, digits, '_' and '-', at most 64 characters"

# The registered tools by name, in the order they were declared.
_TOOLS = {}

# The JSON Schema type of a Python annotation, for schemas derived from a
# function's signature.
_JSON_TYPES = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    dict: "object",
    list: "array",
    type(None): "null",
}


def check_name(name, what):
    """Raises ValueError unless `name` is a valid tool or agent name."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"{what} name {name!r} is not valid: use {_NAME_RULE}")


def docstring_summary(fn):
    """The first paragraph of `fn`'s docstring, on one line, or ''."""
    doc = inspect.getdoc(fn) or ""
    return " ".join(doc.split("\n\n", 1)[0].split())


@dataclasses.dataclass
class _Tool:
    fn: typing.Callable
    name: str
    schema: dict
    signature: inspect.Signature
    takes_ctx: bool
    descriptor: ToolDescriptor
    checks: "_ArgumentChecks"
    examples: list


def tool(fn=None, *, name=None, description=None, schema=None, output_schema=None, examples=()):
    """Registers a function as a tool. Use it bare (`@tool`) or with options.

    - `name`: the tool's name; the function's name by default.
    - `description`: what a model reads to decide when to call it; the first
      paragraph of the docstring by default.
    - `schema`: the JSON Schema (a dict) of the arguments. By default it is
      derived from the signature: `str`, `int`, `float`, `bool`, `list` and
      `dict` annotations become JSON types, parameters without a default are
      required, and no other argument is accepted.
    - `output_schema`: the JSON Schema of the result, when it promises one.
    - `examples`: example arguments (dicts). They join the input schema
      (JSON Schema's `examples`, which models read), and `tool_plugin()`
      calls the tool with each of them when the component is built, so the
      snapshot every instance starts from has the tool's code paths warm: a
      fresh instance's first call is then about as fast as a later one.
      Examples must be pure (no kv, log or llm calls; what they change is in
      every instance) and must succeed, or the build fails.

    The function is called with the JSON arguments as keyword arguments and
    returns anything `json.dumps` can encode (dataclasses too). If its first
    parameter is named `ctx`, it also receives the call's `netra.Context`.
    The function itself is returned unchanged, so it can be tested directly.
    """

    def register(fn):
        _register(fn, name, description, schema, output_schema, examples)
        return fn

    return register(fn) if fn is not None else register


def _register(fn, name, description, schema, output_schema, examples):
    name = fn.__name__ if name is None else name
    check_name(name, "tool")
    if name in _TOOLS:
        raise ValueError(f"two tools are named {name!r}; tool names must be unique")
    description = docstring_summary(fn) if description is None else description
    if not description:
        raise ValueError(
            f"tool {name!r} has no description: pass description=... or give "
            "the function a docstring"
        )
    signature = inspect.signature(fn, eval_str=True)
    params = list(signature.parameters.values())
    takes_ctx = bool(params) and params[0].name == "ctx"
    arguments = params[1:] if takes_ctx else params
    if schema is None:
        schema = _schema_from(arguments)
    else:
        _check_schema(name, schema, arguments)
    examples = list(examples)
    checks = _ArgumentChecks(schema, arguments)
    for example in examples:
        if not isinstance(example, dict):
            raise TypeError(f"the examples of tool {name!r} must be dicts of arguments")
        try:
            checks.check(example)
        except ToolError as error:
            raise ValueError(f"tool {name!r}: example {example!r} does not fit the schema: {error}") from None
    if examples and isinstance(schema, dict) and "examples" not in schema:
        schema = {**schema, "examples": examples}
    descriptor = ToolDescriptor(
        name=name,
        description=description,
        input_schema=_schema_json(name, "schema", schema),
        output_schema=None
        if output_schema is None
        else _schema_json(name, "output_schema", output_schema),
    )
    _TOOLS[name] = _Tool(fn, name, schema, signature, takes_ctx, descriptor, checks, examples)


def _schema_json(name, what, schema):
    if not isinstance(schema, dict):
        raise TypeError(f"the {what} of tool {name!r} must be a dict, not {type(schema).__name__}")
    try:
        return json.dumps(schema, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"the {what} of tool {name!r} is not JSON: {error}") from None


def _json_type(annotation):
    """The JSON Schema `type` of an annotation, or None when it has none."""
    if annotation in _JSON_TYPES:
        return _JSON_TYPES[annotation]
    origin = typing.get_origin(annotation)
    if origin in (list, tuple, set, frozenset):
        return "array"
    if origin is dict:
        return "object"
    if origin is typing.Union or type(annotation).__name__ == "UnionType":
        types = [_json_type(arg) for arg in typing.get_args(annotation)]
        if all(isinstance(t, str) for t in types):
            # int | float is a number; JSON Schema's "integer" is within it.
            if "number" in types and "integer" in types:
                types.remove("integer")
            return types if len(types) > 1 else types[0]
    return None


def _schema_from(params):
    properties = {}
    required = []
    open_ended = False
    for param in params:
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            open_ended = True
            continue
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            continue
        prop = {}
        json_type = _json_type(param.annotation)
        if json_type is not None:
            prop["type"] = json_type
        if param.default is inspect.Parameter.empty:
            required.append(param.name)
        else:
            try:
                json.dumps(param.default, allow_nan=False)
            except (TypeError, ValueError):
                pass
            else:
                prop["default"] = param.default
        properties[param.name] = prop
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": properties,
    }
    if required:
        schema["required"] = required
    if not open_ended:
        schema["additionalProperties"] = False
    return schema


def _check_schema(name, schema, params):
    """Checks, when the tool is declared, that a hand-written schema and the
    function agree on the argument names."""
    if not isinstance(schema, dict):
        raise TypeError(f"the schema of tool {name!r} must be a dict, not {type(schema).__name__}")
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return
    names = {
        p.name
        for p in params
        if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    }
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    for param in params:
        if param.name in names and param.default is inspect.Parameter.empty:
            if param.name not in properties:
                raise ValueError(
                    f"tool {name!r}: the required parameter `{param.name}` is not "
                    "among the schema's properties"
                )
    if not open_ended:
        for prop in properties:
            if prop not in names:
                raise ValueError(
                    f"tool {name!r}: the schema's property `{prop}` is not a "
                    "parameter of the function"
                )


_TYPE_CHECKS = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool)
    or isinstance(v, float) and v.is_integer(),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}


def _json_kind(value):
    for kind in ("boolean", "integer", "number", "string", "object", "array", "null"):
        if _TYPE_CHECKS[kind](value):
            return "a number" if kind == "integer" else _article(kind)
    return type(value).__name__


def _article(word):
    return ("an " if word[0] in "aeiou" else "a ") + word


class _ArgumentChecks:
    """The checks of one tool's arguments, worked out once when it is declared
    so that a call only runs them: the schema's required names, unknown
    names, each property's `type` and `enum` (the top level; deeper checks
    are left to the tool), and whether the function can be called with the
    arguments as keywords without `inspect.Signature.bind`."""

    def __init__(self, schema, params):
        properties = schema.get("properties")
        properties = properties if isinstance(properties, dict) else {}
        self.required = tuple(schema.get("required") or ())
        self.allowed = None
        if schema.get("additionalProperties") is False:
            self.allowed = frozenset(properties)
            self.expected = ", ".join(f"`{p}`" for p in properties) or "none"
        self.properties = {}
        for key, prop in properties.items():
            if not isinstance(prop, dict):
                continue
            types = prop.get("type")
            types = [types] if isinstance(types, str) else types
            known = [t for t in types if t in _TYPE_CHECKS] if isinstance(types, list) else []
            enum = prop.get("enum")
            enum = enum if isinstance(enum, list) else None
            if known or enum is not None:
                checks = tuple(_TYPE_CHECKS[t] for t in known)
                wanted = " or ".join(_article(t) for t in known)
                self.properties[key] = (checks, wanted, enum)
        # Keywords are enough when every parameter can be passed by keyword.
        kinds = {p.kind for p in params}
        self.keywords_only = not kinds & {
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.VAR_POSITIONAL,
        }
        self.open_ended = inspect.Parameter.VAR_KEYWORD in kinds
        self.names = frozenset(
            p.name for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD
        )
        self.needed = tuple(
            p.name
            for p in params
            if p.default is inspect.Parameter.empty
            and p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
        )

    def check(self, args):
        for required in self.required:
            if required not in args:
                raise ToolError.invalid_arguments(f"missing the required argument `{required}`")
        if self.allowed is not None:
            for key in args:
                if key not in self.allowed:
                    raise ToolError.invalid_arguments(
                        f"unexpected argument `{key}` (the arguments are: {self.expected})"
                    )
        properties = self.properties
        for key, value in args.items():
            checked = properties.get(key)
            if checked is None:
                continue
            checks, wanted, enum = checked
            if checks and not any(check(value) for check in checks):
                raise ToolError.invalid_arguments(
                    f"`{key}` must be {wanted}, not {_json_kind(value)}"
                )
            if enum is not None and value not in enum:
                choices = ", ".join(json.dumps(choice) for choice in enum)
                raise ToolError.invalid_arguments(f"`{key}` must be one of {choices}")

    def fits(self, args):
        """Whether `fn(**args)` binds exactly as `signature.bind(**args)` would."""
        if not self.keywords_only:
            return False
        for name in self.needed:
            if name not in args:
                return False
        if not self.open_ended:
            for key in args:
                if key not in self.names:
                    return False
        return True


def _reject_constant(constant):
    raise ValueError(f"{constant} is not valid JSON")


def _parse_arguments(arguments):
    # Blank arguments count as `{}`: callers, models especially, often send
    # nothing to a tool whose arguments are all optional.
    if not arguments.strip():
        return {}
    try:
        args = _DECODER.decode(arguments)
    except ValueError as error:
        raise ToolError.invalid_arguments(f"the arguments are not valid JSON: {error}") from None
    if not isinstance(args, dict):
        raise ToolError.invalid_arguments(
            f"the arguments must be a JSON object, not {_json_kind(args)}"
        )
    return args


def _encode_default(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# Made once: `json.loads`/`json.dumps` with options build a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_ENCODER = json.JSONEncoder(allow_nan=False, default=_encode_default)


def call(name, arguments, ctx=None):
    """Runs the tool `name` on JSON `arguments` and returns its JSON result,
    raising ToolError for every failure the tool or its arguments cause. The
    export class uses it; tests may too."""
    registered = _TOOLS.get(name)
    if registered is None:
        known = ", ".join(f"`{n}`" for n in _TOOLS) or "none"
        raise ToolError.not_found(f"no tool named `{name}` in this plugin (it has: {known})")
    args = _parse_arguments(arguments)
    checks = registered.checks
    checks.check(args)
    leading = (ctx if ctx is not None else Context(),) if registered.takes_ctx else ()
    if checks.fits(args):
        result = registered.fn(*leading, **args)
    else:
        # Let `bind` say what is wrong (or bind what keywords cannot).
        try:
            bound = registered.signature.bind(*leading, **args)
        except TypeError as error:
            raise ToolError.invalid_arguments(str(error)) from None
        result = registered.fn(*bound.args, **bound.kwargs)
    try:
        return _ENCODER.encode(result)
    except (TypeError, ValueError) as error:
        raise ToolError.failed(
            f"the result of `{name}` could not be encoded as JSON: {error}"
        ) from None


# How many times each example runs at build time: CPython specialises the
# bytecode a call runs after a few executions.
_WARM_UP_ROUNDS = 20


def _warm_up():
    """Calls every tool with each of its examples (see `tool`), then leaves
    the garbage collector with nothing to do: what is alive now is in the
    snapshot every instance starts from, and a collection in a fresh instance
    would only walk (and write to) it again."""
    try:
        _run_examples()
    finally:
        gc.collect()
        gc.freeze()


def _run_examples():
    for registered in _TOOLS.values():
        for example in registered.examples:
            text = json.dumps(example)
            for _ in range(_WARM_UP_ROUNDS):
                try:
                    call(registered.name, text)
                except ToolError as error:
                    raise ValueError(
                        f"tool {registered.name!r}: example {text} failed: {error}"
                    ) from None


def descriptors():
    """The descriptors of the registered tools, in declaration order."""
    return [registered.descriptor for registered in _TOOLS.values()]


def _log_unexpected(name, error):
    """Logs an exception that was not a ToolError, with its traceback, for the
    plugin's author; the caller only sees `Type: message`."""
    try:
        trace = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        log.warn(f"tool `{name}` failed with {describe_exception(error)}\n{trace}")
    except BaseException:  # logging must not turn a failure into a trap
        pass


def tool_plugin():
    """Returns the class componentize-py exports as `netra:plugin/tool`.

    Assign it at the end of the app module: `Tool = netra.tool_plugin()`.
    The name must be `Tool`: componentize-py looks the export up by the
    interface's name.
    """
    if not _TOOLS:
        raise RuntimeError(
            "no tools: decorate at least one function with @netra.tool before "
            "calling netra.tool_plugin()"
        )
    _warm_up()

    class Tool:
        """The `netra:plugin/tool` export."""

        def describe(self):
            return [descriptor.to_wit() for descriptor in descriptors()]

        def invoke(self, ctx, name, arguments):
            # Every exception becomes a `tool-error`: an exception that left
            # this method would trap the component.
            try:
                return call(name, arguments, Context.from_wit(ctx))
            except BaseException as error:
                if not isinstance(error, ToolError):
                    _log_unexpected(name, error)
                raise _bindings.Err(as_tool_error(error).to_wit()) from None

    return Tool
