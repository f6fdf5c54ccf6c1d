#!/usr/bin/env python3
"""End-to-end MCP client check using the official MCP Python SDK (pinned: mcp==1.30.0).

Usage:
    python client.py --http URL --token TOKEN [--hotload]
    python client.py [--hotload] --stdio -- CMD ARGS...
    python client.py --http URL --token TOKEN --ask --tool-deadline S --ask-wait S

Steps (one "OK <step>" line each, or "FAIL <step>: reason"):
    initialize     initialize; print server name/version and protocol version
    list_tools     tools/list following nextCursor; `calculate` present, inputSchema is an object
    calculate      calculate {"expression": "2+3*4"}: not isError, structuredContent, text content
    calculate_error calculate {"expression": "2+"}: a result with isError=true (not a JSON-RPC error)
    unknown_tool   call `no_such_tool`: JSON-RPC error (McpError) or isError result; both accepted
    cancel         sleep {"ms": 30000}, cancelled after 0.5 s; notifications/cancelled is sent;
                   the session still works afterwards
    hotload        (only with --hotload) print READY_FOR_HOTLOAD, wait for a stdin line (<= 20 s),
                   then wait (<= 10 s) for notifications/tools/list_changed and re-list the tools

With --ask (the server serves plugins/conformance), the steps are instead about the
questions a tool asks its client (elicitation and sampling):
    no_capability  a session without elicitation/sampling callbacks: test_elicitation
                   and test_sampling are isError results naming the missing capability
    elicit_accept  test_elicitation; the callback accepts: the answer reaches the tool
    elicit_decline the callback declines: the tool reports action=decline
    elicit_invalid the callback answers {"username": 5}: isError, the answer does not match
    sample         test_sampling; the callback's text reaches the tool
    elicit_slow    the callback answers after 1.5 x --tool-deadline: the call succeeds (the
                   deadline stands still while a question waits)
    elicit_late    the callback answers after --ask-wait + 1 s: isError "timeout"
                   (the host's ask_wait limit)
    agent_asks     (with --polyglot) the agent echo-agent called as a tool with "ask" asks its
                   user: the question reaches the client as an elicitation; accepted, the
                   agent answers "hello Ada"; declined, the agent hears it
    polyglot       (with --polyglot: py-probe and js-probe served too) py_ask and js_ask, a
                   Python and a JavaScript tool, ask for free text: the answer reaches them,
                   and their two progress reports reach the client

Exit status: 0 only if every step passed (a skipped hotload does not count as a failure).
Every wait is bounded; a watchdog thread hard-exits with status 1 if the whole run ever exceeds
--deadline seconds.

Only the standard library and the `mcp` distribution (with its own dependencies anyio and httpx)
are used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import threading
import time
import traceback
from typing import Any

import anyio
import httpx  # dependency of mcp 1.x; the SDK's documented way to pass HTTP headers
import mcp.types as types
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import McpError
from mcp.shared.message import SessionMessage

STEP_TIMEOUT = 15.0  # seconds, per ordinary step
CANCEL_AFTER = 0.5  # seconds before cancelling the sleep call
SLEEP_MS = 30000
HOTLOAD_STDIN_TIMEOUT = 20.0
HOTLOAD_NOTIFY_TIMEOUT = 10.0
MAX_PAGES = 1000


def out(line: str) -> None:
    print(line, flush=True)


class StepFailed(Exception):
    pass


def check(cond: Any, msg: str) -> None:
    if not cond:
        raise StepFailed(msg)


def text_of(result: types.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


# --------------------------------------------------------------------------------------------
# Outgoing-message tap: sits between ClientSession and the transport and records every
# JSON-RPC message the client actually hands to the transport (used to learn the request id
# of the `sleep` call and to prove that notifications/cancelled was written).
# --------------------------------------------------------------------------------------------
class Tap:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def pump(self, src: Any, dst: Any) -> None:
        async with src, dst:
            async for msg in src:
                await dst.send(msg)  # returns once the transport has taken the message
                if isinstance(msg, SessionMessage):
                    self.sent.append(msg.message.model_dump(by_alias=True, mode="json", exclude_none=True))

    def find(self, start: int, pred) -> dict[str, Any] | None:
        for m in self.sent[start:]:
            if pred(m):
                return m
        return None

    async def wait_find(self, start: int, pred, timeout: float = 5.0) -> dict[str, Any] | None:
        """Like find(), but waits (bounded) for the pump to hand the message over."""
        with anyio.move_on_after(timeout):
            while (m := self.find(start, pred)) is None:
                await anyio.sleep(0.01)
            return m
        return None


# --------------------------------------------------------------------------------------------
# Incoming-message handler: records list_changed notifications and anything unexpected.
# --------------------------------------------------------------------------------------------
class Inbox:
    def __init__(self) -> None:
        self.list_changed = 0
        self.list_changed_event = anyio.Event()
        self.exceptions: list[str] = []

    async def __call__(self, message: Any) -> None:
        if isinstance(message, types.ServerNotification):
            if isinstance(message.root, types.ToolListChangedNotification):
                self.list_changed += 1
                self.list_changed_event.set()
        elif isinstance(message, Exception):
            # e.g. "Received response with an unknown request ID" for a late answer to a
            # request we cancelled; recorded, printed in the cancel step, never fatal.
            self.exceptions.append(repr(message))

    def reset_list_changed(self) -> None:
        self.list_changed = 0
        self.list_changed_event = anyio.Event()


def read_stdin_line_in_thread() -> tuple[threading.Event, list[bytes | None]]:
    """Read one line from fd 0 in a daemon thread (os.read: no buffered-stdin lock at exit)."""
    done = threading.Event()
    box: list[bytes | None] = [None]

    def run() -> None:
        buf = b""
        try:
            while not buf.endswith(b"\n"):
                chunk = os.read(0, 1)
                if not chunk:  # EOF
                    break
                buf += chunk
        except OSError:
            pass
        box[0] = buf
        done.set()

    threading.Thread(target=run, name="stdin-reader", daemon=True).start()
    return done, box


class Runner:
    def __init__(self, session: ClientSession, tap: Tap, inbox: Inbox, hotload: bool) -> None:
        self.session = session
        self.tap = tap
        self.inbox = inbox
        self.hotload = hotload
        self.passed: list[str] = []
        self.failed: list[str] = []
        self.skipped: list[str] = []
        self.init_result: types.InitializeResult | None = None
        self.current: str = "initialize"  # step in progress (for transport-level failures)
        self.finished = False

    async def step(self, name: str, fn, timeout: float = STEP_TIMEOUT) -> bool:
        self.current = name
        try:
            with anyio.fail_after(timeout):
                await fn()
        except TimeoutError:
            out(f"FAIL {name}: timed out after {timeout:.0f} s")
        except StepFailed as e:
            out(f"FAIL {name}: {e}")
        except McpError as e:
            out(f"FAIL {name}: unexpected JSON-RPC error code={e.error.code} message={e.error.message!r}")
        except Exception as e:  # noqa: BLE001
            out(f"FAIL {name}: {type(e).__name__}: {e}")
            traceback.print_exc(file=sys.stderr)
        else:
            out(f"OK {name}")
            self.passed.append(name)
            return True
        self.failed.append(name)
        return False

    # a. -------------------------------------------------------------------------------------
    async def initialize(self) -> None:
        r = await self.session.initialize()
        self.init_result = r
        tools_cap = r.capabilities.tools
        out(
            f"server: name={r.serverInfo.name!r} version={r.serverInfo.version!r} "
            f"protocolVersion={r.protocolVersion} "
            f"tools.listChanged={tools_cap.listChanged if tools_cap else None}"
        )
        check(tools_cap is not None, "server does not advertise the tools capability")

    # b. -------------------------------------------------------------------------------------
    async def list_all_tools(self) -> tuple[list[types.Tool], int]:
        tools: list[types.Tool] = []
        pages = 0
        cursor: str | None = None
        seen_cursors: set[str] = set()
        while True:
            if cursor is None:
                res = await self.session.list_tools()
            else:
                res = await self.session.list_tools(params=types.PaginatedRequestParams(cursor=cursor))
            pages += 1
            tools.extend(res.tools)
            cursor = res.nextCursor
            if not cursor:
                break
            check(cursor not in seen_cursors, f"nextCursor {cursor!r} repeated (pagination loop)")
            check(pages < MAX_PAGES, f"more than {MAX_PAGES} pages")
            seen_cursors.add(cursor)
        names = [t.name for t in tools]
        dups = sorted({n for n in names if names.count(n) > 1})
        check(not dups, f"tool names listed more than once across pages: {dups}")
        return tools, pages

    async def list_tools(self) -> None:
        tools, pages = await self.list_all_tools()
        out(f"tools: count={len(tools)} pages={pages} names={[t.name for t in tools]}")
        calc = next((t for t in tools if t.name == "calculate"), None)
        check(calc is not None, "tool `calculate` not listed")
        schema = calc.inputSchema
        check(
            isinstance(schema, dict) and schema.get("type") == "object",
            f"calculate.inputSchema is not an object schema: {schema!r}",
        )

    # c. -------------------------------------------------------------------------------------
    async def calculate(self) -> None:
        r = await self.session.call_tool("calculate", {"expression": "2+3*4"})
        out(f"calculate 2+3*4: structuredContent={r.structuredContent!r} text={text_of(r)!r}")
        check(not r.isError, f"isError is true: {text_of(r)!r}")
        check(r.structuredContent is not None, "no structuredContent")
        check(text_of(r).strip(), "text content is empty")
        if isinstance(r.structuredContent, dict) and "value" in r.structuredContent:
            v = r.structuredContent["value"]
            check(
                isinstance(v, (int, float)) and math.isclose(v, 14),
                f"structuredContent.value is {v!r}, expected 14",
            )

    # d. -------------------------------------------------------------------------------------
    async def calculate_error(self) -> None:
        try:
            r = await self.session.call_tool("calculate", {"expression": "2+"})
        except McpError as e:
            raise StepFailed(
                f"got a JSON-RPC error (code={e.error.code} {e.error.message!r}) instead of an isError result"
            ) from None
        out(f"calculate 2+: isError={r.isError} text={text_of(r)!r}")
        check(r.isError is True, "expected isError=true for an invalid expression")

    # e. -------------------------------------------------------------------------------------
    async def unknown_tool(self) -> None:
        try:
            r = await self.session.call_tool("no_such_tool", {})
        except McpError as e:
            out(f"unknown tool -> JSON-RPC error code={e.error.code} message={e.error.message!r}")
            return
        check(r.isError, f"calling an unknown tool succeeded: {text_of(r)!r}")
        out(f"unknown tool -> isError result text={text_of(r)!r}")

    # f. -------------------------------------------------------------------------------------
    async def cancel(self) -> None:
        # mcp 1.30.0 never sends notifications/cancelled by itself: cancelling the caller (or a
        # read timeout) only stops waiting (shared/session.py BaseSession.send_request). So we
        # cancel the call with an anyio cancel scope, then send the notification ourselves.
        mark = len(self.tap.sent)
        n_exc = len(self.inbox.exceptions)
        t0 = time.monotonic()
        with anyio.move_on_after(CANCEL_AFTER) as scope:
            r = await self.session.call_tool("sleep", {"ms": SLEEP_MS})
        if not scope.cancelled_caught:
            raise StepFailed(f"sleep returned before it was cancelled: isError={r.isError} {text_of(r)!r}")
        req = await self.tap.wait_find(
            mark,
            lambda m: m.get("method") == "tools/call" and (m.get("params") or {}).get("name") == "sleep",
        )
        check(req is not None and "id" in req, "could not find the outgoing tools/call request for sleep")
        request_id = req["id"]
        await self.session.send_notification(
            types.ClientNotification(
                types.CancelledNotification(
                    params=types.CancelledNotificationParams(
                        requestId=request_id, reason="cancelled by client.py"
                    )
                )
            )
        )
        sent = await self.tap.wait_find(
            mark,
            lambda m: m.get("method") == "notifications/cancelled"
            and (m.get("params") or {}).get("requestId") == request_id,
        )
        check(sent is not None, "notifications/cancelled was not written to the transport")
        t_cancel = time.monotonic() - t0
        out(f"cancel: sent after {t_cancel:.2f} s: {json.dumps(sent, separators=(',', ':'))}")

        # The session must still work.
        r2 = await self.session.call_tool("calculate", {"expression": "2+3*4"})
        check(not r2.isError, f"calculate after cancel returned isError: {text_of(r2)!r}")
        total = time.monotonic() - t0
        check(total < 10, f"cancel + follow-up call took {total:.1f} s (should be well under 30 s)")
        late = self.inbox.exceptions[n_exc:]
        for x in late:
            print(f"[mcp_e2e] cancel: unmatched incoming message: {x}", file=sys.stderr, flush=True)
        out(
            f"cancel: session still works; total {total:.2f} s; "
            f"unmatched/late responses so far: {len(late)} (details on stderr)"
        )

    # g. -------------------------------------------------------------------------------------
    async def hotload_step(self) -> None:
        caps = self.init_result.capabilities.tools if self.init_result else None
        if not (caps and caps.listChanged):
            out("WARN hotload: server did not advertise tools.listChanged=true")
        before, _ = await self.list_all_tools()
        self.inbox.reset_list_changed()
        done, box = read_stdin_line_in_thread()
        out("READY_FOR_HOTLOAD")
        t0 = time.monotonic()
        while not done.is_set():
            if time.monotonic() - t0 > HOTLOAD_STDIN_TIMEOUT:
                raise StepFailed(f"no line on stdin within {HOTLOAD_STDIN_TIMEOUT:.0f} s")
            await anyio.sleep(0.05)
        line = box[0] or b""
        check(line, "stdin reached EOF without a line")
        out(f"hotload: got stdin line {line.decode(errors='replace').strip()!r}")
        with anyio.move_on_after(HOTLOAD_NOTIFY_TIMEOUT):
            await self.inbox.list_changed_event.wait()
        check(
            self.inbox.list_changed > 0,
            f"no notifications/tools/list_changed within {HOTLOAD_NOTIFY_TIMEOUT:.0f} s",
        )
        after, pages = await self.list_all_tools()
        new = sorted({t.name for t in after} - {t.name for t in before})
        out(
            f"hotload: list_changed received ({self.inbox.list_changed}); tools before={len(before)} "
            f"after={len(after)} pages={pages} new={new}"
        )

    async def run_all(self) -> None:
        if not await self.step("initialize", self.initialize):
            return  # nothing else can work
        await self.step("list_tools", self.list_tools)
        await self.step("calculate", self.calculate)
        await self.step("calculate_error", self.calculate_error)
        await self.step("unknown_tool", self.unknown_tool)
        await self.step("cancel", self.cancel)
        if self.hotload:
            await self.step(
                "hotload",
                self.hotload_step,
                timeout=STEP_TIMEOUT + HOTLOAD_STDIN_TIMEOUT + HOTLOAD_NOTIFY_TIMEOUT,
            )
        else:
            out("SKIP hotload: --hotload not given")
            self.skipped.append("hotload")
        self.finished = True


class Answers:
    """The client's side of a tool's questions: what the next elicitation gets."""

    def __init__(self) -> None:
        self.mode = "accept"
        self.delay = 0.0
        self.asked: list[types.ElicitRequestParams] = []

    async def elicit(self, _context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        self.asked.append(params)
        if self.delay:
            await anyio.sleep(self.delay)
        if self.mode == "decline":
            return types.ElicitResult(action="decline")
        if "answer" in params.requestedSchema.get("properties", {}):
            return types.ElicitResult(action="accept", content={"answer": "Ada"})
        if "value" in params.requestedSchema.get("properties", {}):
            return types.ElicitResult(action="accept", content={"value": "Ada"})
        if self.mode == "decline":
            return types.ElicitResult(action="decline")
        if self.mode == "invalid":
            return types.ElicitResult(action="accept", content={"username": 5, "email": "x"})
        return types.ElicitResult(action="accept", content={"username": "ada", "email": "ada@example.com"})

    async def sample(self, _context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        prompt = params.messages[0].content
        text = prompt.text if isinstance(prompt, types.TextContent) else "?"
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text=f"echo of {text}"),
            model="client-model",
            stopReason="endTurn",
        )


class AskRunner(Runner):
    def __init__(self, plain: ClientSession, session: ClientSession, answers: Answers, args: argparse.Namespace) -> None:
        super().__init__(session, Tap(), Inbox(), False)
        self.plain = plain
        self.answers = answers
        self.tool_deadline = args.tool_deadline
        self.ask_wait = args.ask_wait
        self.polyglot = args.polyglot

    async def call(self, name: str, arguments: dict[str, Any], session: ClientSession | None = None) -> tuple[bool, str]:
        result = await (session or self.session).call_tool(name, arguments)
        return bool(result.isError), text_of(result)

    async def no_capability(self) -> None:
        await self.plain.initialize()
        failed, text = await self.call("test_elicitation", {"message": "Who are you?"}, self.plain)
        check(failed and "elicitation capability" in text, f"elicitation without the capability: {text!r}")
        failed, text = await self.call("test_sampling", {"prompt": "hi"}, self.plain)
        check(failed and "sampling capability" in text, f"sampling without the capability: {text!r}")

    async def elicit_accept(self) -> None:
        await self.session.initialize()
        self.answers.mode = "accept"
        failed, text = await self.call("test_elicitation", {"message": "Who are you?"})
        check(not failed, f"isError: {text!r}")
        check("action=accept" in text and "ada@example.com" in text, f"answer not seen by the tool: {text!r}")
        asked = self.answers.asked[-1]
        check(asked.message == "Who are you?", f"prompt: {asked.message!r}")
        check(asked.requestedSchema["required"] == ["username", "email"], f"schema: {asked.requestedSchema!r}")

    async def elicit_decline(self) -> None:
        self.answers.mode = "decline"
        failed, text = await self.call("test_elicitation", {"message": "Who are you?"})
        check(not failed and "action=decline" in text, f"{text!r}")

    async def elicit_invalid(self) -> None:
        self.answers.mode = "invalid"
        failed, text = await self.call("test_elicitation", {"message": "Who are you?"})
        check(failed and "does not match the schema" in text, f"{text!r}")

    async def sample(self) -> None:
        failed, text = await self.call("test_sampling", {"prompt": "Say hello"})
        check(not failed and text == "LLM response: echo of Say hello", f"{text!r}")

    async def elicit_slow(self) -> None:
        self.answers.mode = "accept"
        self.answers.delay = self.tool_deadline * 1.5
        try:
            failed, text = await self.call("test_elicitation", {"message": "Take your time"})
        finally:
            self.answers.delay = 0.0
        check(not failed and "action=accept" in text, f"an answer after the deadline: {text!r}")

    async def elicit_late(self) -> None:
        self.answers.delay = self.ask_wait + 1.0
        try:
            failed, text = await self.call("test_elicitation", {"message": "Too late"})
        finally:
            self.answers.delay = 0.0
        check(failed and text.startswith("timeout"), f"an answer after ask_wait: {text!r}")

    async def polyglot_ask(self) -> None:
        for tool in ("py_ask", "js_ask"):
            reports: list[tuple[float, str | None]] = []

            async def progress(value: float, _total: float | None, message: str | None) -> None:
                reports.append((value, message))

            result = await self.session.call_tool(tool, {"prompt": "Your name?"}, progress_callback=progress)
            text = text_of(result)
            check(not result.isError, f"{tool}: {text!r}")
            check(result.structuredContent == {"answer": "Ada"}, f"{tool}: {result.structuredContent!r}")
            check(self.answers.asked[-1].message == "Your name?", f"{tool} asked {self.answers.asked[-1].message!r}")
            check([m for _, m in reports] == ["asking", "answered"], f"{tool} progress: {reports!r}")
            failed, text = await self.call(tool, {"prompt": "Your name?"}, self.plain)
            check(failed and "elicitation capability" in text, f"{tool} without the capability: {text!r}")

    async def agent_asks(self) -> None:
        self.answers.mode = "accept"
        result = await self.session.call_tool("echo-agent", {"input": "ask"})
        check(not result.isError, f"{text_of(result)!r}")
        check(result.structuredContent["output"] == "hello Ada", f"{result.structuredContent!r}")
        check(self.answers.asked[-1].message == "What is your name?", f"{self.answers.asked[-1]!r}")
        self.answers.mode = "decline"
        try:
            result = await self.session.call_tool("echo-agent", {"input": "ask"})
        finally:
            self.answers.mode = "accept"
        check(result.structuredContent["output"] == "error: the user declined to answer", f"{result.structuredContent!r}")

    async def run_all(self) -> None:
        await self.step("no_capability", self.no_capability)
        if not await self.step("elicit_accept", self.elicit_accept):
            return
        await self.step("elicit_decline", self.elicit_decline)
        await self.step("elicit_invalid", self.elicit_invalid)
        await self.step("sample", self.sample)
        await self.step("elicit_slow", self.elicit_slow)
        await self.step("elicit_late", self.elicit_late, timeout=STEP_TIMEOUT + self.ask_wait)
        if self.polyglot:
            await self.step("polyglot", self.polyglot_ask)
            await self.step("agent_asks", self.agent_asks)
        self.finished = True


async def run_ask(args: argparse.Namespace, holder: list[Runner]) -> None:
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    answers = Answers()
    async with httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(30.0, read=300.0)) as http:
        async with streamable_http_client(args.http, http_client=http) as (read1, write1, _):
            async with streamable_http_client(args.http, http_client=http) as (read2, write2, _):
                async with ClientSession(read1, write1) as plain:
                    async with ClientSession(
                        read2,
                        write2,
                        elicitation_callback=answers.elicit,
                        sampling_callback=answers.sample,
                    ) as session:
                        runner = AskRunner(plain, session, answers, args)
                        holder.append(runner)
                        await runner.run_all()


async def run_session(read: Any, write: Any, hotload: bool, holder: list[Runner]) -> None:
    tap = Tap()
    inbox = Inbox()
    tap_send, tap_recv = anyio.create_memory_object_stream[SessionMessage](0)
    async with anyio.create_task_group() as tg:
        tg.start_soon(tap.pump, tap_recv, write)
        async with ClientSession(read, tap_send, message_handler=inbox) as session:
            runner = Runner(session, tap, inbox, hotload)
            holder.append(runner)
            await runner.run_all()
        tg.cancel_scope.cancel()


async def amain(args: argparse.Namespace) -> int:
    holder: list[Runner] = []
    # Opening/closing a transport is bounded too (connect + whole run + shutdown).
    budget = args.deadline - 5
    try:
        with anyio.fail_after(budget):
            if args.ask:
                await run_ask(args, holder)
            elif args.http:
                headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
                http = httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(30.0, read=300.0))
                async with http:
                    async with streamable_http_client(args.http, http_client=http) as (read, write, _sid):
                        await run_session(read, write, args.hotload, holder)
            else:
                cmd = args.cmd
                if cmd and cmd[0] == "--":
                    cmd = cmd[1:]
                if not cmd:
                    out("FAIL transport: --stdio needs a command after --")
                    return 1
                params = StdioServerParameters(command=cmd[0], args=cmd[1:], env=dict(os.environ))
                async with stdio_client(params) as (read, write):
                    await run_session(read, write, args.hotload, holder)
    except TimeoutError:
        out(f"FAIL transport: run did not finish within {budget:.0f} s")
        return 1
    except BaseException as e:  # noqa: BLE001 - includes ExceptionGroup from task groups
        if isinstance(e, KeyboardInterrupt):
            raise
        runner = holder[0] if holder else None
        if runner is None or not runner.finished:
            step = runner.current if runner else "initialize"
            out(f"FAIL {step}: transport error: {describe(e)}")
            traceback.print_exc(file=sys.stderr)
            return 1
        # All steps ran; the failure happened while closing the transport: report it, but
        # judge the run by its steps.
        out(f"WARN transport shutdown: {describe(e)}")

    if not holder:
        out("FAIL transport: session never started")
        return 1
    runner = holder[0]
    out(
        f"SUMMARY passed={len(runner.passed)} failed={len(runner.failed)} "
        f"skipped={len(runner.skipped)}"
    )
    return 0 if not runner.failed else 1


def describe(e: BaseException) -> str:
    """Flatten (nested) exception groups into one line."""
    if isinstance(e, BaseExceptionGroup):
        return "; ".join(describe(x) for x in e.exceptions)
    text = f"{type(e).__name__}: {e}"
    if e.__cause__ is not None:
        text += f" (caused by {describe(e.__cause__)})"
    return " ".join(text.split())  # always one line


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--http", metavar="URL", help="streamable HTTP endpoint, e.g. http://127.0.0.1:8080/mcp")
    g.add_argument("--stdio", action="store_true", help="spawn the server: --stdio -- CMD ARGS...")
    p.add_argument("--token", help="bearer token sent as 'Authorization: Bearer TOKEN' (HTTP)")
    p.add_argument("--hotload", action="store_true", help="run the list_changed / hot-load step")
    p.add_argument("--ask", action="store_true", help="the elicitation and sampling steps (HTTP)")
    p.add_argument("--polyglot", action="store_true", help="with --ask: py_ask and js_ask are served too")
    p.add_argument("--tool-deadline", type=float, default=1.0, help="the served tools' deadline, seconds (--ask)")
    p.add_argument("--ask-wait", type=float, default=3.0, help="the served tools' ask_wait, seconds (--ask)")
    p.add_argument("--deadline", type=float, default=180.0, help="hard limit for the whole run, seconds")
    p.add_argument("cmd", nargs=argparse.REMAINDER, help="server command for --stdio (after --)")
    args = p.parse_args()

    def watchdog() -> None:
        out(f"FAIL watchdog: whole run exceeded {args.deadline:.0f} s")
        os._exit(1)

    timer = threading.Timer(args.deadline, watchdog)
    timer.daemon = True
    timer.start()
    try:
        code = asyncio.run(amain(args))
    except KeyboardInterrupt:
        code = 130
    timer.cancel()
    sys.stdout.flush()
    sys.exit(code)


if __name__ == "__main__":
    main()
