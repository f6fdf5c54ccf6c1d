"""Tests of the netra Python SDK, run with the host's CPython:

    python3 -m unittest discover -s sdk/python/tests

They generate componentize-py's bindings for both worlds into a temporary
directory and replace the host functions with fakes, so they check the SDK
against the real generated types without building a component. Without
componentize-py they are skipped.
"""

import contextlib
import importlib
import io
import json
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

SDK = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(SDK))

import build  # noqa: E402  (sdk/python/build.py)

netra = None
wit = None
_bindings_dir = None


def setUpModule():
    global netra, wit, _bindings_dir
    try:
        componentize_py, _ = build.find_componentize_py()
    except build.BuildError as error:
        raise unittest.SkipTest(str(error))
    _bindings_dir = tempfile.mkdtemp(prefix="netra-py-bindings-")
    subprocess.run(
        [
            str(componentize_py),
            "-d", str(build.ROOT / "wit"),
            "-w", "tool-plugin",
            "-w", "agent-plugin",
            "bindings", _bindings_dir,
        ],  # fmt: skip
        check=True,
        stdout=subprocess.DEVNULL,
    )
    sys.path.insert(0, _bindings_dir)
    for name in [m for m in sys.modules if m == "netra" or m.startswith("netra.")]:
        del sys.modules[name]
    netra = importlib.import_module("netra")
    wit = importlib.import_module("wit_world.imports")
    importlib.import_module("wit_world.imports.types")


def tearDownModule():
    if _bindings_dir:
        shutil.rmtree(_bindings_dir, ignore_errors=True)


def ctx():
    return wit.types.RunContext("u", "t", "r")


class Fakes(unittest.TestCase):
    """Resets the registries and restores every faked host function."""

    def setUp(self):
        netra._tool._TOOLS.clear()
        netra._agent._AGENT = None
        self.logged = []
        self.fake(wit.log, "log", lambda level, message: self.logged.append((level.name, message)))

    def fake(self, module, name, function):
        original = getattr(module, name)
        setattr(module, name, function)
        self.addCleanup(setattr, module, name, original)

    def invoke(self, name, arguments):
        """Invokes through the export class; returns the result or the WIT error."""
        plugin = netra.tool_plugin()()
        try:
            return json.loads(plugin.invoke(ctx(), name, arguments))
        except netra._bindings.Err as error:
            return error.value


class ToolTests(Fakes):
    def declare(self):
        @netra.tool
        def add(a: int, b: int = 0) -> int:
            """Adds two integers.

            More text that is not part of the description.
            """
            return a + b

        @netra.tool(name="who", description="Returns the caller.")
        def whoami(ctx):
            return {"user": ctx.user_id, "run": ctx.run_id}

        @netra.tool(description="Fails.")
        def fail(how: str):
            if how == "tool-error":
                raise netra.ToolError.denied("not you")
            if how == "timeout":
                raise netra.ToolError.timeout()
            if how == "type":
                return None + 1
            if how == "exit":
                raise SystemExit(3)
            if how == "unencodable":
                return {1: object()}
            raise ValueError(f"boom: {how}")

    def test_describe_lists_tools_in_order_with_schemas_as_json(self):
        self.declare()
        described = netra.tool_plugin()().describe()
        self.assertEqual([d.name for d in described], ["add", "who", "fail"])
        add = described[0]
        self.assertIsInstance(add, wit.types.ToolDescriptor)
        self.assertEqual(add.description, "Adds two integers.")
        schema = json.loads(add.input_schema)
        self.assertEqual(schema["properties"], {"a": {"type": "integer"}, "b": {"type": "integer", "default": 0}})
        self.assertEqual(schema["required"], ["a"])
        self.assertIs(schema["additionalProperties"], False)
        self.assertEqual(json.loads(described[1].input_schema)["properties"], {})

    def test_invoke_calls_with_keyword_arguments_and_encodes_the_result(self):
        self.declare()
        self.assertEqual(self.invoke("add", '{"a": 2, "b": 40}'), 42)
        self.assertEqual(self.invoke("add", '{"a": 2}'), 2)
        self.assertEqual(self.invoke("who", ""), {"user": "u", "run": "r"})

    def test_argument_problems_are_invalid_arguments(self):
        self.declare()
        cases = {
            "not json": "not valid JSON",
            '{"a": NaN}': "NaN is not valid JSON",
            "[1, 2]": "must be a JSON object, not an array",
            "{}": "missing the required argument `a`",
            '{"a": 1, "c": 2}': "unexpected argument `c`",
            '{"a": "two"}': "`a` must be an integer, not a string",
            '{"a": true}': "`a` must be an integer, not a boolean",
            '{"ctx": 1}': "unexpected argument `ctx`",
        }
        for arguments, message in cases.items():
            with self.subTest(arguments=arguments):
                name = "who" if "ctx" in arguments else "add"
                error = self.invoke(name, arguments)
                self.assertIsInstance(error, wit.types.ToolError_InvalidArguments)
                self.assertIn(message, error.value)

    def test_unknown_tool_is_not_found(self):
        self.declare()
        error = self.invoke("nope", "{}")
        self.assertIsInstance(error, wit.types.ToolError_NotFound)
        self.assertIn("`nope`", error.value)
        self.assertIn("`add`", error.value)

    def test_tool_errors_pass_through_and_other_exceptions_fail(self):
        self.declare()
        cases = {
            "tool-error": wit.types.ToolError_Denied("not you"),
            "timeout": wit.types.ToolError_Timeout(),
            "value": wit.types.ToolError_Failed("ValueError: boom: value"),
            "exit": wit.types.ToolError_Failed("SystemExit: 3"),
        }
        for how, expected in cases.items():
            with self.subTest(how=how):
                self.assertEqual(self.invoke("fail", json.dumps({"how": how})), expected)
        # A TypeError inside the tool is the tool's failure, not bad arguments.
        error = self.invoke("fail", '{"how": "type"}')
        self.assertIsInstance(error, wit.types.ToolError_Failed)
        self.assertTrue(error.value.startswith("TypeError: "), error.value)
        # The traceback of an unexpected exception goes to the host's log.
        self.assertTrue(any(level == "WARN" and "Traceback" in m for level, m in self.logged))

    def test_an_unencodable_result_fails(self):
        self.declare()
        error = self.invoke("fail", '{"how": "unencodable"}')
        self.assertIsInstance(error, wit.types.ToolError_Failed)
        self.assertIn("could not be encoded as JSON", error.value)

    def test_a_hand_written_schema_is_checked_against_the_function(self):
        schema = {"type": "object", "properties": {"value": {"type": "number"}}, "required": ["value"]}

        @netra.tool(description="Doubles.", schema=schema)
        def double(value):
            return value * 2

        self.assertEqual(self.invoke("double", '{"value": 2.5}'), 5.0)
        self.assertEqual(json.loads(netra._tool.descriptors()[0].input_schema), schema)
        def half(value):
            return value / 2

        with self.assertRaisesRegex(ValueError, "`amount` is not a parameter"):
            netra.tool(description="x", schema={"properties": {"value": {}, "amount": {}}})(half)
        with self.assertRaisesRegex(ValueError, "`value` is not among"):
            netra.tool(description="x", schema={"properties": {}})(half)

    def test_declaration_mistakes_are_reported_when_the_module_loads(self):
        with self.assertRaisesRegex(ValueError, "not valid"):
            netra.tool(name="Bad Name", description="x")(lambda: 1)
        def undocumented():
            return 1

        with self.assertRaisesRegex(ValueError, "no description"):
            netra.tool(undocumented)
        netra.tool(name="dup", description="x")(lambda: 1)
        with self.assertRaisesRegex(ValueError, "unique"):
            netra.tool(name="dup", description="x")(lambda: 1)
        netra._tool._TOOLS.clear()
        with self.assertRaisesRegex(RuntimeError, "no tools"):
            netra.tool_plugin()

    def test_examples_join_the_schema_and_run_when_the_plugin_is_exported(self):
        calls = []

        @netra.tool(examples=[{"a": 1}, {"a": 2, "b": 3}])
        def add(a: int, b: int = 0) -> int:
            """Adds two integers."""
            calls.append((a, b))
            return a + b

        described = netra.tool_plugin()().describe()
        schema = json.loads(described[0].input_schema)
        self.assertEqual(schema["examples"], [{"a": 1}, {"a": 2, "b": 3}])
        # Each example runs 20 times, so the snapshot has its code warm.
        self.assertEqual(calls.count((1, 0)), 20)
        self.assertEqual(calls.count((2, 3)), 20)

    def test_bad_examples_are_reported_when_declared_or_exported(self):
        with self.assertRaisesRegex(ValueError, "does not fit the schema: .*missing the required"):

            @netra.tool(examples=[{"b": 1}])
            def add(a: int, b: int = 0) -> int:
                """Adds two integers."""
                return a + b

        netra._tool._TOOLS.clear()

        @netra.tool(examples=[{"a": 0}])
        def invert(a: int) -> float:
            """Inverts a number."""
            if a == 0:
                raise netra.ToolError.invalid_arguments("cannot invert 0")
            return 1 / a

        with self.assertRaisesRegex(ValueError, "example .* failed: .*cannot invert 0"):
            netra.tool_plugin()

    def test_kv_errors_keep_a_denial_a_denial(self):
        def denied(key):
            raise netra._bindings.Err(wit.kv.KvError_Denied("no grant"))

        self.fake(wit.kv, "get", denied)

        @netra.tool(description="Reads.")
        def read():
            return netra.kv.get("k")

        self.assertEqual(
            self.invoke("read", "{}"),
            wit.types.ToolError_Denied("key-value access denied: no grant"),
        )


class HostFunctionTests(Fakes):
    def test_kv_round_trips_and_maps_errors(self):
        store = {}
        self.fake(wit.kv, "get", store.get)
        self.fake(wit.kv, "set", store.__setitem__)
        self.fake(wit.kv, "delete", lambda k: store.pop(k, None) is not None)
        self.fake(wit.kv, "list_keys", lambda p: sorted(k for k in store if k.startswith(p)))
        netra.kv.set("a", "text")
        netra.kv.set_json("b", {"n": 1})
        self.assertEqual(netra.kv.get("a"), b"text")
        self.assertEqual(netra.kv.get_json("b"), {"n": 1})
        self.assertEqual(netra.kv.get_json("missing", []), [])
        self.assertEqual(netra.kv.list_keys(), ["a", "b"])
        self.assertTrue(netra.kv.delete("a"))
        store["broken"] = b"{"
        with self.assertRaises(netra.KvError) as caught:
            netra.kv.get_json("broken")
        self.assertEqual(caught.exception.kind, "encoding")

        def too_large(key, value):
            raise netra._bindings.Err(wit.kv.KvError_TooLarge("1 MiB"))

        self.fake(wit.kv, "set", too_large)
        with self.assertRaises(netra.KvError) as caught:
            netra.kv.set("k", b"x")
        self.assertEqual((caught.exception.kind, caught.exception.message), ("too-large", "1 MiB"))

    def test_config_log_and_events_forward(self):
        self.fake(wit.config, "get", {"unit": "m"}.get)
        self.assertEqual(netra.config.get("unit"), "m")
        self.assertEqual(netra.config.get("other", "x"), "x")
        netra.log.info("hello")
        self.assertEqual(self.logged[-1], ("INFO", "hello"))
        seen = []
        self.fake(wit.events, "thinking", lambda t: seen.append(("thinking", t)))
        self.fake(wit.events, "message_delta", lambda t: seen.append(("delta", t)))
        netra.events.thinking("hmm")
        netra.events.message_delta("hi")
        self.assertEqual(seen, [("thinking", "hmm"), ("delta", "hi")])

    def test_interaction_and_progress_forward_and_map_errors(self):
        asked = []

        def ask(prompt, schema, timeout_ms):
            asked.append((prompt, schema and json.loads(schema), timeout_ms))
            return '"draft"'

        self.fake(wit.interaction, "ask", ask)
        schema = {"type": "string", "enum": ["draft", "final"]}
        self.assertEqual(netra.interaction.ask("Save as?", schema, timeout=1.5), "draft")
        self.assertEqual(asked, [("Save as?", schema, 1500)])
        sampled = []

        def sample(messages, max_tokens, timeout_ms):
            sampled.append(([(m.role, m.content) for m in messages], max_tokens, timeout_ms))
            return "hi"

        self.fake(wit.interaction, "sample", sample)
        conversation = [("system", "Be brief."), netra.Message("user", "hello")]
        self.assertEqual(netra.interaction.sample(conversation, 50), "hi")
        roles = wit.types.Role
        self.assertEqual(sampled, [([(roles.SYSTEM, "Be brief."), (roles.USER, "hello")], 50, 0)])
        reports = []
        self.fake(wit.progress, "report", lambda text, fraction: reports.append((text, fraction)))
        netra.progress.report("half", 0.5)
        netra.progress.report("more")
        self.assertEqual(reports, [("half", 0.5), ("more", None)])

        def declined(prompt, schema, timeout_ms):
            raise netra._bindings.Err(wit.interaction.AskError_Declined())

        self.fake(wit.interaction, "ask", declined)

        @netra.tool(description="Asks.")
        def question():
            return netra.interaction.ask("Sure?")

        self.assertEqual(
            self.invoke("question", "{}"),
            wit.types.ToolError_Denied("the user declined to answer"),
        )

        def unsupported(prompt, schema, timeout_ms):
            raise netra._bindings.Err(wit.interaction.AskError_Unsupported("no client"))

        self.fake(wit.interaction, "ask", unsupported)
        with self.assertRaises(netra.AskError) as caught:
            netra.interaction.ask("Sure?")
        self.assertEqual((caught.exception.kind, str(caught.exception)), ("unsupported", "cannot ask: no client"))

    def test_a_missing_interface_names_the_world_that_has_it(self):
        self.fake(netra._bindings, "events", None)
        with self.assertRaisesRegex(RuntimeError, "agent-plugin world"):
            netra.events.thinking("x")

    def test_tools_call_encodes_decodes_and_raises_tool_errors(self):
        calls = []

        def call(name, arguments):
            calls.append((name, json.loads(arguments)))
            if name == "missing":
                raise netra._bindings.Err(wit.types.ToolError_NotFound("not granted"))
            return '{"ok": true}'

        self.fake(wit.tools, "call", call)
        self.assertEqual(netra.tools.call("calc", {"x": 1}), {"ok": True})
        self.assertEqual(calls, [("calc", {"x": 1})])
        with self.assertRaises(netra.ToolError) as caught:
            netra.tools.call("missing")
        self.assertEqual(caught.exception, netra.ToolError.not_found("not granted"))
        self.assertEqual(str(caught.exception), "not found: not granted")
        with self.assertRaises(netra.ToolError) as caught:
            netra.tools.call("calc", {"x": object()})
        self.assertEqual(caught.exception.kind, "invalid-arguments")

        self.fake(
            wit.tools,
            "list",
            lambda: [wit.types.ToolDescriptor("calc", "Calculates.", "{}", None)],
        )
        self.assertEqual(netra.tools.list(), [netra.ToolDescriptor("calc", "Calculates.", "{}")])

    def test_llm_chat_converts_both_ways(self):
        requests = []

        def chat(request):
            requests.append(request)
            call = wit.llm.ToolCall("c1", "calc", '{"x": 1}')
            return wit.llm.ChatResponse("hi", [call], wit.llm.Usage(3, 4))

        self.fake(wit.llm, "chat", chat)
        reply = netra.llm.chat(
            [
                {"role": "system", "content": "Be brief."},
                netra.Message("user", "hello"),
                netra.llm.ChatMessage("tool", "2", tool_call_id="c0"),
            ],
            tools=[netra.ToolDescriptor("calc", "Calculates.", "{}")],
            temperature=0,
        )
        self.assertEqual(reply.content, "hi")
        self.assertEqual(reply.tool_calls[0].args(), {"x": 1})
        self.assertEqual((reply.prompt_tokens, reply.completion_tokens), (3, 4))
        request = requests[0]
        self.assertEqual([m.role for m in request.messages], [wit.types.Role.SYSTEM, wit.types.Role.USER, wit.types.Role.TOOL])
        self.assertEqual(request.messages[2].tool_call_id, "c0")
        self.assertEqual(request.tools[0].name, "calc")
        self.assertEqual(request.temperature, 0.0)

        def limited(request):
            raise netra._bindings.Err(wit.llm.LlmError_RateLimited("slow down"))

        self.fake(wit.llm, "chat", limited)
        with self.assertRaises(netra.LlmError) as caught:
            netra.llm.chat([{"role": "user", "content": "x"}])
        self.assertEqual(caught.exception.kind, "rate-limited")


class AgentTests(Fakes):
    def run_agent(self, function, input="hi"):
        netra._agent._AGENT = None
        netra.agent(name="probe", description="Probes.")(function)
        plugin = netra.agent_plugin()()
        history = [wit.types.Message(wit.types.Role.USER, "earlier")]
        try:
            return plugin.run(ctx(), input, history)
        except netra._bindings.Err as error:
            return error.value

    def test_describe_and_run(self):
        def run(ctx, input, history):
            return f"{ctx.user_id}:{input}:{history[0].role}:{history[0].content}"

        self.assertEqual(self.run_agent(run), "u:hi:user:earlier")
        descriptor = netra.agent_plugin()().describe()
        self.assertEqual((descriptor.name, descriptor.description), ("probe", "Probes."))

    def test_exceptions_become_agent_errors(self):
        def raising(error):
            def run(ctx, input, history):
                raise error

            return run

        T = netra.ToolError
        cases = [
            (netra.AgentError.invalid_input("no"), wit.types.AgentError_InvalidInput("no")),
            (T.not_found("calc"), wit.types.AgentError_Failed("tool call not found: calc")),
            (T.timeout(), wit.types.AgentError_Unavailable("tool call timed out")),
            (T.cancelled(), wit.types.AgentError_Cancelled()),
            (netra.LlmError("down", "unavailable"), wit.types.AgentError_Unavailable("model unavailable: down")),
            (RuntimeError("oops"), wit.types.AgentError_Failed("RuntimeError: oops")),
            (KeyError("k"), wit.types.AgentError_Failed("KeyError: 'k'")),
        ]
        for error, expected in cases:
            with self.subTest(error=error):
                self.assertEqual(self.run_agent(raising(error)), expected)
        self.assertEqual(
            self.run_agent(lambda ctx, input, history: None),
            wit.types.AgentError_Failed("TypeError: the agent must return a str, not NoneType"),
        )

    def test_one_agent_per_plugin(self):
        netra.agent(name="one", description="x")(lambda c, i, h: "")
        with self.assertRaisesRegex(ValueError, "one agent"):
            netra.agent(name="two", description="x")(lambda c, i, h: "")


class BuildScriptTests(unittest.TestCase):
    def test_problems_are_reported_without_running_componentize_py(self):
        with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stderr(io.StringIO()):
            plugin = Path(tmp)
            out = str(plugin / "out.wasm")
            self.assertEqual(build.main([tmp, "-o", out]), 1)  # no app.py
            (plugin / "app.py").write_text("")
            (plugin / "plugin.toml").write_text('name = "x"\nkind = "gadget"\n')
            self.assertEqual(build.main([tmp, "-o", out]), 1)  # unknown kind
            self.assertEqual(build.main([tmp, "-o", out, "--world", "tool-plugin", "--wit", tmp + "/nowhere"]), 1)

    def test_the_manifest_kind_picks_the_world(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "plugin.toml"
            path.write_text('name = "x"\nkind = "agent"\n\n[needs]\ntools = ["a"]\n')
            self.assertEqual(build.WORLDS[build.read_manifest(path)["kind"]], "agent-plugin")


if __name__ == "__main__":
    unittest.main()
