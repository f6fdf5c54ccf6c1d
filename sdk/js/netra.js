// The JavaScript SDK for netra plugins: `import { ... } from 'netra'`.
//
// It hides the componentize-js bindings of wit/plugin.wit. A tool plugin
// defines tools and exports them as the `tool` interface; an agent plugin
// exports one agent as the `agent` interface:
//
//     import { defineTool, exportTools, ToolError } from 'netra';
//
//     const greet = defineTool(
//       { name: 'greet', description: 'Greets someone.', schema: { type: 'object' } },
//       (args, ctx) => ({ greeting: `Hello, ${args.name}!` }),
//     );
//     export const tool = exportTools(greet);
//
// Every call runs in a fresh instance, and module-level code runs once, at
// build time (componentize-js snapshots the initialised module with Wizer).
//
// How componentize-js maps the WIT types, which this file relies on:
// - an exported interface is an exported object named after it (`tool`,
//   `agent`) whose methods are called without `this`;
// - records are objects with camelCase fields, enums are strings, options are
//   a value or `undefined`, variants are `{ tag, val }` objects;
// - an exported `result` is whatever the function returns unless it returns
//   `{ tag: 'ok' | 'err', val }`, which this SDK always does; a thrown Error
//   would trap the component, so nothing is thrown across the boundary;
// - an imported `result` returns the ok value and throws an error whose
//   `payload` is the err value.
//
// `./world.js` is the world's host interfaces; build.mjs copies it from
// `worlds/tool-plugin.js` or `worlds/agent-plugin.js`.

import * as host from './world.js';

/** Tool and agent names: lowercase ASCII letters, digits, `_` and `-`, 1 to 64 characters. */
const NAME = /^[a-z0-9_-]{1,64}$/;

// ---------------------------------------------------------------------------
// Errors

const TOOL_ERROR_KINDS = ['invalid-arguments', 'denied', 'not-found', 'failed', 'timeout', 'cancelled'];
const AGENT_ERROR_KINDS = ['invalid-input', 'unavailable', 'failed', 'cancelled'];
/** The kinds of the two error variants that carry no message. */
const BARE_KINDS = ['timeout', 'cancelled'];

/** Labels matching the Rust SDK's `Display` of each kind. */
const LABELS = {
  'invalid-arguments': 'invalid arguments',
  denied: 'denied',
  'not-found': 'not found',
  failed: 'failed',
  timeout: 'timed out',
  cancelled: 'cancelled',
  'invalid-input': 'invalid input',
  unavailable: 'unavailable',
};

/**
 * Why a tool call failed; the WIT `tool-error` variant. Throw one from a tool
 * handler (`throw ToolError.invalid('...')`); anything else a handler throws
 * becomes `failed` with "<Name>: <message>".
 */
export class ToolError extends Error {
  /** @param {string} kind one of the WIT cases, e.g. 'invalid-arguments' */
  constructor(kind, message = '') {
    if (!TOOL_ERROR_KINDS.includes(kind)) {
      throw new TypeError(`ToolError: unknown kind ${JSON.stringify(kind)}; expected one of ${TOOL_ERROR_KINDS.join(', ')}`);
    }
    super(BARE_KINDS.includes(kind) ? LABELS[kind] : String(message));
    this.name = 'ToolError';
    this.kind = kind;
  }
  static invalid(message) { return new ToolError('invalid-arguments', message); }
  /** The same as invalid(), under the WIT case's name. */
  static invalidArguments(message) { return new ToolError('invalid-arguments', message); }
  static denied(message) { return new ToolError('denied', message); }
  static notFound(message) { return new ToolError('not-found', message); }
  static failed(message) { return new ToolError('failed', message); }
  static timeout() { return new ToolError('timeout'); }
  static cancelled() { return new ToolError('cancelled'); }
  /** "invalid arguments: ...", as the Rust SDK displays it. */
  toString() { return BARE_KINDS.includes(this.kind) ? this.message : `${LABELS[this.kind]}: ${this.message}`; }
  /** @internal the WIT value */
  toWit() { return BARE_KINDS.includes(this.kind) ? { tag: this.kind } : { tag: this.kind, val: this.message }; }
}

/**
 * Why an agent run failed; the WIT `agent-error` variant. Anything else a run
 * throws is mapped: a ToolError from `tools.call` (timeout -> unavailable,
 * cancelled -> cancelled, else failed), an unavailable store or rate-limited
 * model -> unavailable, everything else -> failed "<Name>: <message>".
 */
export class AgentError extends Error {
  /** @param {string} kind one of the WIT cases, e.g. 'unavailable' */
  constructor(kind, message = '') {
    if (!AGENT_ERROR_KINDS.includes(kind)) {
      throw new TypeError(`AgentError: unknown kind ${JSON.stringify(kind)}; expected one of ${AGENT_ERROR_KINDS.join(', ')}`);
    }
    super(BARE_KINDS.includes(kind) ? LABELS[kind] : String(message));
    this.name = 'AgentError';
    this.kind = kind;
  }
  static invalidInput(message) { return new AgentError('invalid-input', message); }
  static unavailable(message) { return new AgentError('unavailable', message); }
  static failed(message) { return new AgentError('failed', message); }
  static cancelled() { return new AgentError('cancelled'); }
  toString() { return BARE_KINDS.includes(this.kind) ? this.message : `${LABELS[this.kind]}: ${this.message}`; }
  /** @internal the WIT value */
  toWit() { return BARE_KINDS.includes(this.kind) ? { tag: this.kind } : { tag: this.kind, val: this.message }; }
}

const KV_LABELS = {
  denied: 'key-value access denied',
  'too-large': 'key or value too large',
  unavailable: 'key-value store unavailable',
  encoding: 'key-value JSON encoding',
};

/** Why a key-value operation failed: `kind` is 'denied', 'too-large', 'unavailable' or 'encoding'. */
export class KvError extends Error {
  constructor(kind, detail) {
    super(`${KV_LABELS[kind] ?? kind}: ${detail}`);
    this.name = 'KvError';
    this.kind = kind;
    this.detail = detail;
  }
}

/** Why a chat completion failed: `kind` is 'rate-limited', 'unavailable', 'invalid-request' or 'denied'. */
export class LlmError extends Error {
  constructor(kind, detail) {
    super(`${kind}: ${detail}`);
    this.name = 'LlmError';
    this.kind = kind;
    this.detail = detail;
  }
}

const ASK_LABELS = {
  declined: 'the user declined to answer',
  cancelled: 'the question was cancelled',
  timeout: 'no answer came in time',
  unsupported: 'cannot ask',
  invalid: 'invalid question',
  failed: 'the question failed',
};

/**
 * Why a question (`interaction`) got no answer: `kind` is 'declined',
 * 'cancelled', 'timeout', 'unsupported', 'invalid' or 'failed'.
 */
export class AskError extends Error {
  constructor(kind, detail = '') {
    const label = ASK_LABELS[kind] ?? kind;
    super(detail ? `${label}: ${detail}` : label);
    this.name = 'AskError';
    this.kind = kind;
    this.detail = detail;
  }
}

/** True for a WIT variant value `{ tag, val? }` whose tag is one of `kinds`. */
function isVariant(value, kinds) {
  return value !== null && typeof value === 'object' && !(value instanceof Error) && kinds.includes(value.tag);
}

/** The err payload of an imported `result`, when `error` carries one. */
function payloadOf(error) {
  return error !== null && typeof error === 'object' && error.payload !== null
    && typeof error.payload === 'object' && typeof error.payload.tag === 'string'
    ? error.payload
    : undefined;
}

/** "<Name>: <message>" for an Error, something readable for any other thrown value. */
function describeThrown(value) {
  if (value instanceof Error || (value !== null && typeof value === 'object' && typeof value.message === 'string')) {
    return `${value.name || 'Error'}: ${value.message}`;
  }
  return `uncaught exception: ${show(value)}`;
}

/** A readable text for any value: strings as they are, the rest as JSON when possible. */
function show(value) {
  if (typeof value === 'string') return value;
  if (value instanceof Error) return value.stack ? `${describeThrown(value)}\n${value.stack}` : describeThrown(value);
  try {
    const text = JSON.stringify(value);
    if (typeof text === 'string') return text;
  } catch {
    // Cycles and BigInts fall through to String().
  }
  return String(value);
}

/** Maps anything a tool handler threw onto a ToolError. */
function toToolError(thrown, toolName) {
  if (thrown instanceof ToolError) return thrown;
  if (thrown instanceof KvError) {
    return thrown.kind === 'denied' ? ToolError.denied(thrown.message) : ToolError.failed(thrown.message);
  }
  if (thrown instanceof AskError) {
    if (thrown.kind === 'cancelled') return ToolError.cancelled();
    if (thrown.kind === 'timeout') return ToolError.timeout();
    return thrown.kind === 'declined' ? ToolError.denied(thrown.message) : ToolError.failed(thrown.message);
  }
  // The componentize-js convention: `throw { tag: 'failed', val: '...' }`.
  if (isVariant(thrown, TOOL_ERROR_KINDS)) return new ToolError(thrown.tag, thrown.val ?? '');
  logUnexpected(`tool \`${toolName}\``, thrown);
  return ToolError.failed(describeThrown(thrown));
}

/** Maps anything an agent's run threw onto an AgentError. */
function toAgentError(thrown) {
  if (thrown instanceof AgentError) return thrown;
  if (thrown instanceof ToolError) {
    if (thrown.kind === 'timeout') return AgentError.unavailable(thrown.toString());
    if (thrown.kind === 'cancelled') return AgentError.cancelled();
    return AgentError.failed(`tool call ${thrown.toString()}`);
  }
  if (thrown instanceof KvError) {
    return thrown.kind === 'unavailable' ? AgentError.unavailable(thrown.message) : AgentError.failed(thrown.message);
  }
  if (thrown instanceof LlmError) {
    return thrown.kind === 'rate-limited' || thrown.kind === 'unavailable'
      ? AgentError.unavailable(`model ${thrown.message}`)
      : AgentError.failed(`model ${thrown.message}`);
  }
  if (thrown instanceof AskError) {
    return thrown.kind === 'cancelled' ? AgentError.cancelled() : AgentError.failed(thrown.message);
  }
  if (isVariant(thrown, AGENT_ERROR_KINDS)) return new AgentError(thrown.tag, thrown.val ?? '');
  logUnexpected('the agent', thrown);
  return AgentError.failed(describeThrown(thrown));
}

/** An unexpected exception is a bug worth a log line with its stack. */
function logUnexpected(what, thrown) {
  try {
    host.log.log('warn', `${what} threw ${show(thrown)}`);
  } catch {
    // Logging must never turn an error into a trap.
  }
}

function isThenable(value) {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof value.then === 'function';
}

/** Calls `body(value)` now, or when `value` (a promise) settles. */
function then(value, body, onError) {
  return isThenable(value) ? Promise.resolve(value).then(body, onError) : body(value);
}

// ---------------------------------------------------------------------------
// Tools

const TOOL = Symbol('netra.tool');

/**
 * Defines a tool. `spec.schema` is the JSON Schema of the arguments (an object
 * or JSON text; `{ type: 'object' }` when absent), `spec.outputSchema` the
 * optional schema of the result. `handler(args, ctx)` gets the parsed
 * arguments and the run context `{ userId, threadId, runId }`; it returns (or
 * resolves to) any JSON-encodable value, and throws ToolError to fail.
 *
 * Before calling the handler, the SDK checks the top level of the schema:
 * that the arguments are an object, the `required` properties, the `type` of
 * each property and `additionalProperties: false`. Deeper checks are the
 * handler's.
 *
 * `spec.examples` is an optional list of example arguments. They join the
 * input schema (JSON Schema's `examples`, which models read), and
 * exportTools() calls the handler with each of them when the component is
 * built, so that the snapshot every instance starts from already has the
 * handler's code compiled: a fresh instance's first call is then as fast as
 * a later one. Examples must be pure (no kv, log or llm calls; anything they
 * change is in every instance) and must succeed, or the build fails.
 */
export function defineTool(spec, handler) {
  const { name, description, schema = { type: 'object' }, outputSchema, examples = [] } = spec ?? {};
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new TypeError(`defineTool: invalid tool name ${JSON.stringify(name)}: use 1 to 64 lowercase ASCII letters, digits, '_' or '-'`);
  }
  if (typeof description !== 'string' || description.trim() === '') {
    throw new TypeError(`defineTool(${name}): description must be a non-empty string`);
  }
  if (typeof handler !== 'function') {
    throw new TypeError(`defineTool(${name}): the second argument must be the handler function (args, ctx) => result`);
  }
  if (!Array.isArray(examples) || examples.some((e) => jsonType(e) !== 'object')) {
    throw new TypeError(`defineTool(${name}): examples must be a list of argument objects`);
  }
  const input = schemaOf(name, 'schema', schema);
  for (const example of examples) {
    const problem = checkArguments(input.value, example);
    if (problem !== undefined) {
      throw new TypeError(`defineTool(${name}): example ${JSON.stringify(example)} does not fit the schema: ${problem}`);
    }
  }
  if (examples.length > 0 && input.value.examples === undefined) {
    input.value = { ...input.value, examples };
    input.text = JSON.stringify(input.value);
  }
  const output = outputSchema === undefined ? undefined : schemaOf(name, 'outputSchema', outputSchema);
  return Object.freeze({
    [TOOL]: true,
    name,
    description,
    inputSchema: input.text,
    outputSchema: output?.text,
    schema: input.value,
    examples,
    handler,
  });
}

/** A schema given as an object or JSON text, as both. */
function schemaOf(tool, field, schema) {
  let value = schema;
  if (typeof schema === 'string') {
    try {
      value = JSON.parse(schema);
    } catch (error) {
      throw new TypeError(`defineTool(${tool}): ${field} is not valid JSON: ${error.message}`);
    }
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`defineTool(${tool}): ${field} must be a JSON Schema object`);
  }
  return { value, text: JSON.stringify(value) };
}

/**
 * Builds the `tool` interface export from tools made by defineTool:
 * `export const tool = exportTools(a, b);`.
 */
export function exportTools(...defined) {
  const byName = new Map();
  for (const t of defined) {
    if (!t || t[TOOL] !== true) {
      throw new TypeError('exportTools: pass the tools returned by defineTool(...)');
    }
    if (byName.has(t.name)) throw new TypeError(`exportTools: two tools are named \`${t.name}\``);
    byName.set(t.name, t);
  }
  if (byName.size === 0) throw new TypeError('exportTools: export at least one tool');
  const names = [...byName.keys()].join(', ');

  const exported = {
    describe() {
      return [...byName.values()].map((t) => ({
        name: t.name,
        description: t.description,
        inputSchema: t.inputSchema,
        outputSchema: t.outputSchema,
      }));
    },
    invoke(ctx, name, args) {
      const t = byName.get(name);
      if (t === undefined) return err(ToolError.notFound(`no tool \`${name}\` in this plugin; it has: ${names}`));
      let parsed;
      try {
        // Callers (models especially) often send nothing to a tool whose
        // arguments are all optional.
        parsed = args.trim() === '' ? {} : JSON.parse(args);
      } catch (error) {
        return err(ToolError.invalid(`the arguments are not valid JSON: ${error.message}`));
      }
      const problem = checkArguments(t.schema, parsed);
      if (problem !== undefined) return err(ToolError.invalid(problem));
      const fail = (thrown) => err(toToolError(thrown, t.name));
      try {
        return then(t.handler(parsed, ctx), (result) => encodeResult(t.name, result), fail);
      } catch (thrown) {
        return fail(thrown);
      }
    },
  };
  warmUp(exported, byName.values());
  return exported;
}

/** How many times each example runs at build time. */
const WARM_UP_ROUNDS = 20;

/** Calls every tool with each of its examples (see defineTool). */
function warmUp(exported, tools) {
  const ctx = { userId: '', threadId: '', runId: '' };
  for (const t of tools) {
    for (const example of t.examples) {
      const text = JSON.stringify(example);
      for (let round = 0; round < WARM_UP_ROUNDS; round++) {
        const result = exported.invoke(ctx, t.name, text);
        // An async handler settles later; once is enough to compile it.
        if (isThenable(result)) break;
        if (result.tag === 'err') {
          const error = result.val;
          throw new TypeError(`tool ${t.name}: example ${text} failed: ${error.val ?? error.tag}`);
        }
      }
    }
  }
}

function err(error) {
  return { tag: 'err', val: error.toWit() };
}

function encodeResult(tool, result) {
  let text;
  try {
    text = JSON.stringify(result === undefined ? null : result);
  } catch (error) {
    return err(ToolError.failed(`the result of \`${tool}\` could not be encoded as JSON: ${error.message}`));
  }
  if (typeof text !== 'string') {
    return err(ToolError.failed(`the result of \`${tool}\` could not be encoded as JSON: it is a ${typeof result}`));
  }
  return { tag: 'ok', val: text };
}

/** The JSON Schema type name of a value. */
function jsonType(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function hasType(value, type) {
  const actual = jsonType(value);
  return actual === type || (type === 'number' && actual === 'integer');
}

/** Checks the top level of `schema`; returns a message for the caller, or undefined. */
function checkArguments(schema, args) {
  const isObjectSchema = schema.type === 'object' || schema.properties !== undefined || schema.required !== undefined;
  if (!isObjectSchema) return undefined;
  if (jsonType(args) !== 'object') return `expected the arguments to be a JSON object, got ${jsonType(args)}`;
  const problems = [];
  for (const field of Array.isArray(schema.required) ? schema.required : []) {
    if (!Object.hasOwn(args, field)) problems.push(`missing field \`${field}\``);
  }
  const properties = schema.properties !== null && typeof schema.properties === 'object' ? schema.properties : {};
  for (const [field, value] of Object.entries(args)) {
    const property = properties[field];
    if (property === undefined) {
      if (schema.additionalProperties === false) problems.push(`unknown field \`${field}\``);
      continue;
    }
    const types = typeof property?.type === 'string' ? [property.type] : Array.isArray(property?.type) ? property.type : [];
    if (types.length > 0 && !types.some((type) => hasType(value, type))) {
      problems.push(`field \`${field}\` must be ${types.join(' or ')}, got ${jsonType(value)}`);
    }
  }
  return problems.length === 0 ? undefined : problems.join('; ');
}

// ---------------------------------------------------------------------------
// Agents

/**
 * Builds the `agent` interface export:
 * `export const agent = exportAgent({ name, description }, (ctx, input, history) => answer);`.
 * `history` is the thread's earlier messages `{ role, content }`, oldest first;
 * the run returns (or resolves to) the final answer as a string, and throws
 * AgentError to fail.
 */
export function exportAgent(spec, run) {
  const { name, description } = spec ?? {};
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new TypeError(`exportAgent: invalid agent name ${JSON.stringify(name)}: use 1 to 64 lowercase ASCII letters, digits, '_' or '-'`);
  }
  if (typeof description !== 'string' || description.trim() === '') {
    throw new TypeError(`exportAgent(${name}): description must be a non-empty string`);
  }
  if (typeof run !== 'function') {
    throw new TypeError(`exportAgent(${name}): the second argument must be the run function (ctx, input, history) => answer`);
  }
  const fail = (thrown) => ({ tag: 'err', val: toAgentError(thrown).toWit() });
  const finish = (answer) => typeof answer === 'string'
    ? { tag: 'ok', val: answer }
    : fail(AgentError.failed(`the agent returned ${jsonType(answer)}, not a string`));
  return {
    describe() {
      return { name, description };
    },
    run(ctx, input, history) {
      try {
        return then(run(ctx, input, history), finish, fail);
      } catch (thrown) {
        return fail(thrown);
      }
    },
  };
}

// ---------------------------------------------------------------------------
// Host interfaces

function logAt(level) {
  return (...parts) => host.log.log(level, parts.map(show).join(' '));
}

/** Structured logging into the host's tracing; arguments are joined like console.log's. */
export const log = Object.freeze({
  trace: logAt('trace'),
  debug: logAt('debug'),
  info: logAt('info'),
  warn: logAt('warn'),
  error: logAt('error'),
});

/** The operator's config values for this plugin (its `config` table in netra.toml). */
export const config = Object.freeze({
  /** The value of `key`, or `fallback` (default undefined) when it is not set. */
  get(key, fallback = undefined) {
    return host.config.get(key) ?? fallback;
  },
});

/** Runs a kv import, turning its err payload into a KvError. */
function kvCall(call) {
  try {
    return call();
  } catch (error) {
    const payload = payloadOf(error);
    if (payload !== undefined) throw new KvError(payload.tag, payload.val ?? '');
    throw error;
  }
}

const UTF8_ENCODER = new TextEncoder();
const UTF8_DECODER = new TextDecoder();

/**
 * The key-value store, scoped by the host to the (user, plugin) pair of the
 * call. Failures throw KvError; thrown from a tool, a denial becomes `denied`
 * and anything else `failed`.
 */
export const kv = Object.freeze({
  /** The bytes under `key` (a Uint8Array), or undefined. */
  get(key) {
    return kvCall(() => host.kv.get(key));
  },
  /** The UTF-8 text under `key`, or undefined. */
  getText(key) {
    const bytes = kvCall(() => host.kv.get(key));
    return bytes === undefined ? undefined : UTF8_DECODER.decode(bytes);
  },
  /** The JSON value under `key`, or undefined. */
  getJson(key) {
    const text = kv.getText(key);
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new KvError('encoding', `the value of \`${key}\`: ${error.message}`);
    }
  },
  /** Stores `value` (a Uint8Array, or a string stored as UTF-8) under `key`. */
  set(key, value) {
    const bytes = typeof value === 'string' ? UTF8_ENCODER.encode(value) : value;
    kvCall(() => host.kv.set(key, bytes));
  },
  /** Stores `value` as JSON under `key`. */
  setJson(key, value) {
    let text;
    try {
      text = JSON.stringify(value);
    } catch (error) {
      throw new KvError('encoding', `the value for \`${key}\`: ${error.message}`);
    }
    if (typeof text !== 'string') throw new KvError('encoding', `the value for \`${key}\` is a ${typeof value}`);
    kv.set(key, text);
  },
  /** Removes `key`; returns whether it existed. */
  delete(key) {
    return kvCall(() => host.kv.delete(key));
  },
  /** The keys starting with `prefix`, in lexicographic order. */
  listKeys(prefix = '') {
    return kvCall(() => host.kv.listKeys(prefix));
  },
});

/**
 * Progress a tool or agent reports while it works; over MCP, a client that
 * asked for progress gets each report as `notifications/progress`.
 */
export const progress = Object.freeze({
  /** Reports a step: `text` says what is happening, `fraction` (0 to 1) how much is done, when known. */
  report(text, fraction) {
    host.progress.report(String(text), fraction === undefined || fraction === null ? undefined : Number(fraction));
  },
});

/** Seconds as the WIT's milliseconds (0: no timeout of the plugin's own). */
function millis(seconds) {
  return Math.max(0, Math.min(Math.round(Number(seconds || 0) * 1000), 4294967295));
}

/** Runs an interaction import, turning its err payload into an AskError. */
function askCall(call) {
  try {
    return call();
  } catch (error) {
    const payload = payloadOf(error);
    if (payload !== undefined) throw new AskError(payload.tag, payload.val ?? '');
    throw error;
  }
}

/**
 * Questions a tool or agent asks whoever its call is for: over MCP, `ask`
 * reaches the client's user (elicitation) and `sample` its model (sampling).
 * The call's deadline stands still while a question waits; `timeout` is in
 * seconds, and the host's `ask_wait` bounds it too. Failures throw AskError;
 * thrown from a tool, a declined question denies the call.
 */
export const interaction = Object.freeze({
  /**
   * Asks the user `prompt`; returns the answer decoded from JSON. `schema`
   * (an object) is the answer's JSON Schema: an object of string, number,
   * integer, boolean and enum properties, or one such property's schema;
   * without it the answer is free text (a string).
   */
  ask(prompt, schema, timeout = 0) {
    const text = schema === undefined || schema === null ? undefined : JSON.stringify(schema);
    return JSON.parse(askCall(() => host.interaction.ask(String(prompt), text, millis(timeout))));
  },
  /**
   * Asks the client's model to continue `messages` (`{ role, content }`;
   * system messages become its system prompt) in at most `maxTokens`;
   * returns its text.
   */
  sample(messages, maxTokens, timeout = 0) {
    const wit = messages.map((m) => ({ role: m.role, content: String(m.content ?? '') }));
    return askCall(() => host.interaction.sample(wit, maxTokens, millis(timeout)));
  },
});

/** The agent-only interfaces, or a clear error in a tool plugin. */
function agentOnly(name) {
  const value = host[name];
  if (value === null || value === undefined) {
    throw new Error(`netra: \`${name}\` is only available to agent plugins (this plugin is built for ${host.world})`);
  }
  return value;
}

/** Progress an agent reports while it runs (agent plugins only). */
export const events = Object.freeze({
  /** A step of reasoning, shown to the user as the agent's thoughts. */
  thinking(text) {
    agentOnly('events').thinking(String(text));
  },
  /** Text appended to the answer the user sees being written. */
  messageDelta(text) {
    agentOnly('events').messageDelta(String(text));
  },
});

/** The tools the operator granted this agent (agent plugins only). */
export const tools = Object.freeze({
  /** The granted tools' descriptors `{ name, description, inputSchema, outputSchema }` (schemas as JSON text). */
  list() {
    return agentOnly('tools').list();
  },
  /** Calls tool `name` with `args` (JSON-encoded here); returns its parsed JSON result or throws ToolError. */
  call(name, args = {}) {
    const host = agentOnly('tools');
    let text;
    try {
      text = JSON.stringify(args);
    } catch (error) {
      throw ToolError.invalid(`the arguments for \`${name}\` could not be encoded as JSON: ${error.message}`);
    }
    if (typeof text !== 'string') throw ToolError.invalid(`the arguments for \`${name}\` are a ${typeof args}`);
    let result;
    try {
      result = host.call(name, text);
    } catch (error) {
      const payload = payloadOf(error);
      if (payload !== undefined && TOOL_ERROR_KINDS.includes(payload.tag)) throw new ToolError(payload.tag, payload.val ?? '');
      throw error;
    }
    try {
      return JSON.parse(result);
    } catch (error) {
      throw ToolError.failed(`tool \`${name}\` returned a result that is not JSON: ${error.message}`);
    }
  },
});

/** Chat completion with the operator's language model (agent plugins only). */
export const llm = Object.freeze({
  /**
   * Runs one completion. `request` is `{ messages, tools?, model?, temperature?, maxTokens? }`;
   * each message is `{ role, content, toolCalls?, toolCallId? }` and `tools` takes
   * the descriptors of tools.list(). Returns `{ content, toolCalls, usage }`
   * (tool calls are `{ id, name, arguments }`, arguments as JSON text); throws LlmError.
   */
  chat(request) {
    const host = agentOnly('llm');
    const wit = {
      model: request.model,
      messages: request.messages.map((m) => ({
        role: m.role,
        content: m.content ?? '',
        toolCalls: m.toolCalls ?? [],
        toolCallId: m.toolCallId,
      })),
      tools: (request.tools ?? []).map((t) => ({
        name: t.name,
        description: t.description,
        inputSchema: typeof t.inputSchema === 'string' ? t.inputSchema : JSON.stringify(t.inputSchema ?? { type: 'object' }),
        outputSchema: t.outputSchema,
      })),
      temperature: request.temperature,
      maxTokens: request.maxTokens,
    };
    try {
      return host.chat(wit);
    } catch (error) {
      const payload = payloadOf(error);
      if (payload !== undefined) throw new LlmError(payload.tag, payload.val ?? '');
      throw error;
    }
  },
});
