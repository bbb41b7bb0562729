import { test } from 'node:test';
import assert from 'node:assert/strict';
import { paramSizeText, plural } from './format.js';
import { closest, distance } from './suggest.js';

test('plural: "1 file", "0 files", "2 entries"', () => {
  assert.equal(plural(1, 'file'), '1 file');
  assert.equal(plural(0, 'file'), '0 files');
  assert.equal(plural(3, 'blob'), '3 blobs');
  assert.equal(plural(2, 'entry', 'entries'), '2 entries');
});

test('paramSizeText: every way configs write a size shown as llama.cpp does', () => {
  const cases: Record<string, string> = {
    '5M': '5M', '5.00M': '5M', '1.23 M': '1.23M', ' 7.241B ': '7.24B', '7b': '7B', '0.5B': '500M',
    '494032768': '494M', '1.1T': '1.1T', '125k': '125K', '999': '999', '13G': '13B',
    '8x7B': '8x7B', 'unknown': 'unknown', '1.5B\x1b[31m': '1.5B?[31m',
  };
  for (const [given, shown] of Object.entries(cases)) assert.equal(paramSizeText(given), shown, JSON.stringify(given));
});

test('closest: a swap, a missing or extra letter, a unique prefix; nothing for far words', () => {
  const cmds = ['build', 'inspect', 'push', 'pull', 'prune', 'ls', 'rm', 'tag', 'tags'];
  assert.equal(distance('biuld', 'build'), 1);
  assert.equal(closest('biuld', cmds), 'build');
  assert.equal(closest('buidl', cmds), 'build');
  assert.equal(closest('isnpect', cmds), 'inspect');
  assert.equal(closest('insp', cmds), 'inspect');
  assert.equal(closest('BUILD', cmds), 'build');
  assert.equal(closest('lss', cmds), 'ls');
  assert.equal(closest('frobnicate', cmds), undefined);
  assert.equal(closest('p', cmds), undefined);
});
