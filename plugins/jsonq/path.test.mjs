// Unit tests of the path language: `node --test plugins/jsonq/`.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { PathError, parsePath, query } from './path.js';

const doc = {
  a: { b: [{ c: 1 }, { c: 2 }, { d: 3 }] },
  'x.y': { 'k k': true },
  list: [10, 20, 30],
  nothing: null,
};

test('keys, indexes and the whole document', () => {
  assert.deepEqual(query(doc, 'a.b[0].c'), 1);
  assert.deepEqual(query(doc, '$.a.b[1].c'), 2);
  assert.deepEqual(query(doc, '.list[-1]'), 30);
  assert.deepEqual(query(doc, 'list.1'), 20);
  assert.deepEqual(query(doc, '["x.y"][\'k k\']'), true);
  assert.deepEqual(query(doc, ''), doc);
  assert.deepEqual(query(doc, '$'), doc);
  assert.deepEqual(query([1, 2], '[0]'), 1);
});

test('wildcards map over elements, missing values are null', () => {
  assert.deepEqual(query(doc, 'a.b[*].c'), [1, 2, null]);
  assert.deepEqual(query(doc, 'list[*]'), [10, 20, 30]);
  assert.deepEqual(query(doc, 'a.b[*]'), doc.a.b);
  assert.deepEqual(query({ m: { p: 1, q: 2 } }, 'm.*'), [1, 2]);
  assert.deepEqual(query({ g: [[1, 2], [3]] }, 'g[*][*]'), [1, 2, 3]);
  assert.deepEqual(query(doc, 'missing'), null);
  assert.deepEqual(query(doc, 'missing.deeper[3]'), null);
  assert.deepEqual(query(doc, 'list[7]'), null);
  assert.deepEqual(query(doc, 'nothing.x'), null);
  assert.deepEqual(query(doc, 'nothing[*]'), []);
});

test('malformed paths and type mismatches are PathErrors', () => {
  const cases = [
    ['a..b', /expected a key after the `.` at position 1/],
    ['a[', /never closed/],
    ['a[x]', /invalid index "x" at position 2/],
    ['a[1.5]', /invalid index/],
    ['a b', /unexpected " " at position 1/],
    ['["unterminated]', /never closed/],
    ['list.x', /`.x` needs an object, but `\$.list` is an array/],
    ['a.b[0].c.d', /`.d` needs an object, but `\$.a.b\[0\].c` is a number/],
    ['a[0]', /`\[0\]` needs an array, but `\$.a` is an object/],
  ];
  for (const [path, message] of cases) {
    assert.throws(() => query(doc, path), (error) => error instanceof PathError && message.test(error.message), path);
  }
  assert.throws(() => parsePath(42), PathError);
  assert.throws(() => parsePath('a'.repeat(1001)), /longer than 1000/);
});
