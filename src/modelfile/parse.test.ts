import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseModelfile, formatModelfile } from './parse.js';
import { ModelfileSyntaxError, hasErrorCode } from '../errors.js';

const patterns = (l: { pattern: string }[]) => l.map((e) => e.pattern);

test('parses the 12 keywords, case-insensitive, with comments, quotes and escapes', () => {
  const mf = parseModelfile(
    [
      '# a comment',
      '  name  llama3-8b',
      'ARCH transformer',
      'family llama',
      'FORMAT safetensors',
      'PARAMSIZE 8b',
      'PRECISION bf16',
      'QUANTIZATION awq',
      'CONFIG config.json',
      'Model "my model.safetensors"',
      'MODEL shard\\ 2.safetensors',
      'CODE **/*.py',
      'DOC README.md',
      'DATASET data/**',
      'MODEL "my model.safetensors"',
      '',
    ].join('\r\n'),
  );
  assert.equal(mf.name, 'llama3-8b');
  assert.deepEqual(
    [mf.arch, mf.family, mf.format, mf.paramSize, mf.precision, mf.quantization],
    ['transformer', 'llama', 'safetensors', '8b', 'bf16', 'awq'],
  );
  assert.deepEqual(patterns(mf.model), ['my model.safetensors', 'shard 2.safetensors'], 'repeated argument kept once');
  assert.deepEqual(patterns(mf.code), ['**/*.py']);
  assert.deepEqual(patterns(mf.dataset), ['data/**']);
  assert.deepEqual([mf.model[0]!.line, mf.model[0]!.column], [10, 7]);
  assert.deepEqual([mf.config[0]!.line, mf.config[0]!.column], [9, 8]);
});

function syntaxError(text: string, where: RegExp, hint?: RegExp) {
  assert.throws(
    () => parseModelfile(text, 'Modelfile'),
    (e: unknown) => {
      assert.ok(e instanceof ModelfileSyntaxError, String(e));
      assert.ok(hasErrorCode(e, 'MODELFILE_SYNTAX'));
      assert.match(e.message, where);
      if (hint) assert.match(e.hint ?? '', hint);
      return true;
    },
  );
}

test('errors give file:line:column and what to write instead', () => {
  syntaxError('NAME x\nMODLE a.bin\n', /^Modelfile:2:1: unknown instruction "MODLE"$/, /did you mean MODEL\?/);
  syntaxError('NAME x\n   COPY a b\n', /^Modelfile:2:4: unknown instruction "COPY"/, /^instructions are NAME, ARCH/);
  syntaxError('MODELS a.bin', /^Modelfile:1:1: unknown instruction "MODELS"/, /did you mean MODEL/);
  syntaxError('NAME a\nNAME b\n', /^Modelfile:2:1: NAME given twice \(first on line 1\)/, /keep one NAME/);
  syntaxError('MODEL a.bin # weights', /^Modelfile:1:13: comments must be on their own line/);
  syntaxError('MODEL a.bin b.bin', /^Modelfile:1:13: MODEL takes one argument/, /quote a path with blanks/);
  // A single-value keyword holds one value, not paths: say so, and never suggest one line per path.
  syntaxError('NAME a b', /^Modelfile:1:8: NAME takes one value, found more$/, /^NAME is the model's name: one word \(NAME a\), or quote it \(NAME "a b"\)$/);
  syntaxError('PRECISION bf16 fp16', /^Modelfile:1:16: PRECISION takes one value, found more$/, /^PRECISION holds one value: one word \(PRECISION bf16\)/);
  syntaxError('MODEL "a.bin', /^Modelfile:1:7: unclosed double quote/);
  syntaxError('MODEL ""', /^Modelfile:1:7: empty argument/);
  syntaxError('CONFIG', /^Modelfile:1:7: CONFIG needs an argument/, /write CONFIG config.json/);
  syntaxError('DOC a\\', /^Modelfile:1:6: a backslash ends the line/);
  syntaxError('MODEL*.bin', /^Modelfile:1:6: MODEL must be followed by a blank/, /write MODEL \*\.bin/);
  syntaxError('NAME=foo', /^Modelfile:1:5: NAME must be followed by a blank/, /write NAME foo/);
});

test('formatModelfile writes text that parses back to the same Modelfile', () => {
  const src = parseModelfile('NAME "a b"\nPRECISION bf16\nMODEL "x \\"y\\".bin"\nMODEL #hash.bin\nCODE a\\\\b.py\nDOC README.md\nDATASET d/**\n');
  assert.equal(src.model[1]!.pattern, '#hash.bin');
  const text = formatModelfile(src);
  const back = parseModelfile(text);
  assert.equal(back.name, 'a b');
  assert.deepEqual(patterns(back.model), ['x "y".bin', '#hash.bin']);
  assert.deepEqual(patterns(back.code), ['a\\b.py']);
  assert.deepEqual(patterns(back.dataset), ['d/**']);
  assert.equal(formatModelfile(back), text, 'stable');
  assert.doesNotMatch(text, /\d{4}-\d\d-\d\dT/, 'no timestamp: generating twice gives the same text');
});
