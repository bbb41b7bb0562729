import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nestedDeeperThan } from './json-depth.js';

const deep = (n: number): Buffer => Buffer.from(`${'['.repeat(n)}${']'.repeat(n)}`);

test('nesting depth: arrays and objects count, brackets in strings (escaped quotes too) do not', () => {
  assert.equal(nestedDeeperThan(deep(64), 64), false);
  assert.equal(nestedDeeperThan(deep(65), 64), true);
  assert.equal(nestedDeeperThan(deep(200_000), 64), true);
  assert.equal(nestedDeeperThan(Buffer.from('{"a":{"b":[{"c":1}]}}'), 4), false);
  assert.equal(nestedDeeperThan(Buffer.from('{"a":{"b":[{"c":1}]}}'), 3), true);
  assert.equal(nestedDeeperThan(Buffer.from(JSON.stringify({ s: '[[[[{{{{', t: 'a\\"[[[[' })), 1), false);
  assert.equal(nestedDeeperThan(Buffer.from('[[]][[]][[]]'), 2), false, 'siblings do not add up');
});
