// The path language of `json_query`, kept apart from the tool so that
// `node --test plugins/jsonq` can check it without building a component.
//
//   path    = ["$"] [key] segment*        an empty path (or "$") is the whole document
//   segment = "." key                     an object's member; digits also index an array
//           | "[" integer "]"             an array element; negative counts from the end
//           | "[" "*" "]" | ".*"          every element of an array (or value of an object)
//           | "[" quoted "]"              a member whose name needs quoting: ["a.b"], ['x y']
//   key     = one or more characters other than . [ ] ' " and whitespace
//
// A missing member or an index out of range gives null, and so does anything
// read from null. Reading a member of a number, say, is an error. After a
// wildcard the result is an array with one entry per element.

/** Why a path is malformed or cannot be applied; the tool reports it as invalid arguments. */
export class PathError extends Error {
  constructor(message) {
    super(message);
    this.name = 'PathError';
  }
}

const MAX_PATH_LENGTH = 1000;
const KEY = /[^.[\]'"\s]/;

/** Parses `path` into steps: { kind: 'key' | 'index' | 'all', key?, index?, text }. */
export function parsePath(path) {
  if (typeof path !== 'string') throw new PathError('`path` must be a string');
  if (path.length > MAX_PATH_LENGTH) throw new PathError(`the path is longer than ${MAX_PATH_LENGTH} characters`);
  const steps = [];
  let i = path.startsWith('$') ? 1 : 0;
  // A leading key needs no dot: `a.b` as well as `$.a.b` or `.a.b`.
  if (i < path.length && KEY.test(path[i]) && path[i] !== '*') {
    i = readKey(path, i, steps);
  }
  while (i < path.length) {
    const c = path[i];
    if (c === '.') {
      if (path[i + 1] === '*') {
        steps.push({ kind: 'all', text: '.*' });
        i += 2;
      } else if (i + 1 < path.length && KEY.test(path[i + 1])) {
        i = readKey(path, i + 1, steps);
      } else {
        throw new PathError(`expected a key after the \`.\` at position ${i}`);
      }
    } else if (c === '[') {
      i = readBracket(path, i, steps);
    } else {
      throw new PathError(`unexpected ${JSON.stringify(c)} at position ${i}: expected \`.\` or \`[\``);
    }
  }
  return steps;
}

function readKey(path, start, steps) {
  let end = start;
  while (end < path.length && KEY.test(path[end])) end += 1;
  const key = path.slice(start, end);
  steps.push({ kind: 'key', key, text: `.${key}` });
  return end;
}

function readBracket(path, open, steps) {
  const close = path.indexOf(']', open);
  const quote = path[open + 1];
  if (quote === '"' || quote === "'") {
    const end = findClosingQuote(path, open + 1, quote);
    if (path[end + 1] !== ']') throw new PathError(`expected \`]\` at position ${end + 1}`);
    const raw = path.slice(open + 1, end + 1);
    let key;
    try {
      key = quote === '"' ? JSON.parse(raw) : raw.slice(1, -1).replace(/\\(['\\])/g, '$1');
    } catch (error) {
      throw new PathError(`invalid quoted key at position ${open + 1}: ${error.message}`);
    }
    steps.push({ kind: 'key', key, text: `[${raw}]` });
    return end + 2;
  }
  if (close === -1) throw new PathError(`the \`[\` at position ${open} is never closed`);
  const inner = path.slice(open + 1, close).trim();
  if (inner === '*') {
    steps.push({ kind: 'all', text: '[*]' });
  } else if (/^-?\d{1,15}$/.test(inner)) {
    steps.push({ kind: 'index', index: Number(inner), text: `[${inner}]` });
  } else {
    throw new PathError(`invalid index ${JSON.stringify(inner)} at position ${open + 1}: expected an integer, \`*\` or a quoted key`);
  }
  return close + 1;
}

function findClosingQuote(path, start, quote) {
  for (let i = start + 1; i < path.length; i += 1) {
    if (path[i] === '\\') i += 1;
    else if (path[i] === quote) return i;
  }
  throw new PathError(`the quote at position ${start} is never closed`);
}

/** Applies `path` to `document`; missing values are null. */
export function query(document, path) {
  let values = [document];
  let wildcard = false;
  let where = '$';
  for (const step of parsePath(path)) {
    values = values.flatMap((value) => apply(step, value, where));
    if (step.kind === 'all') wildcard = true;
    where += step.text;
  }
  if (wildcard) return values.map((value) => (value === undefined ? null : value));
  return values[0] === undefined ? null : values[0];
}

/** The values `step` selects from `value`; `where` is the path so far, for errors. */
function apply(step, value, where) {
  if (value === undefined || value === null) return step.kind === 'all' ? [] : [undefined];
  const isArray = Array.isArray(value);
  const isObject = typeof value === 'object' && !isArray;
  switch (step.kind) {
    case 'all':
      if (isArray) return value;
      if (isObject) return Object.values(value);
      break;
    case 'index':
      if (isArray) return [value.at(step.index)];
      break;
    case 'key':
      if (isObject) return [Object.hasOwn(value, step.key) ? value[step.key] : undefined];
      if (isArray && /^\d+$/.test(step.key)) return [value[Number(step.key)]];
      break;
  }
  const wants = step.kind === 'key' ? 'an object' : 'an array';
  throw new PathError(`\`${step.text}\` needs ${wants}, but \`${where}\` is ${describe(value)}`);
}

function describe(value) {
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value} (${JSON.stringify(value).slice(0, 40)})`;
}
