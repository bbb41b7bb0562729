/**
 * Files that are not regular files where model files are expected (a FIFO named model.gguf, a
 * FIFO config.json): every reader refuses them at once instead of waiting for a writer for ever.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { PackError } from '../errors.js';
import { generateModelfile } from '../modelfile/generate.js';
import { mkfifo, settles } from '../test-support/fifo.js';
import { sampleModel, writeGguf } from '../test-support/gguf-writer.js';
import { tempDir } from '../test-support/tmp.js';
import { detectModelFormat } from './detect.js';
import { readGgufHeader } from './gguf.js';
import { sniffOnnx } from './onnx.js';
import { readSafetensorsHeader } from './safetensors.js';
import { readSafetensorsModel } from './safetensors-model.js';

test('a FIFO named like a model file: every reader refuses it (not a regular file), none waits on it', async (t) => {
  const dir = await tempDir(t);
  const readers: Array<[string, (p: string) => Promise<unknown>, string]> = [
    ['model.gguf', (p) => readGgufHeader(p), 'USAGE'],
    ['model.safetensors', (p) => readSafetensorsHeader(p), 'IO'],
    ['model.safetensors.index.json', (p) => readSafetensorsModel(p), 'IO'],
    ['model.onnx', (p) => sniffOnnx(p), 'IO'],
    ['weights.bin', (p) => detectModelFormat(p), 'IO'],
  ];
  for (const [name, read, code] of readers) {
    const fifo = join(dir, name);
    mkfifo(fifo);
    const r = await settles(read(fifo), [fifo]);
    assert.notEqual(r, 'hung', `${name}: the reader waited on the FIFO`);
    assert.ok(r !== 'hung' && !r.ok && r.error instanceof PackError, `${name}: ${JSON.stringify(r)}`);
    assert.equal(r.error.code, code, r.error.message);
    assert.equal(r.error.message, `${fifo}: not a regular file`);
    assert.ok(r.error.hint, 'with a hint');
  }
});

test('mpk modelfile generate: a FIFO config.json is skipped with a warning, not waited on', async (t) => {
  const dir = await tempDir(t);
  await writeGguf(join(dir, 'tiny.gguf'), sampleModel());
  const fifo = join(dir, 'config.json');
  mkfifo(fifo);
  const r = await settles(generateModelfile(dir), [fifo]);
  assert.notEqual(r, 'hung', 'generate waited on config.json');
  assert.ok(r !== 'hung' && r.ok, r === 'hung' ? '' : String(!r.ok && r.error));
  assert.deepEqual(r.value.warnings, ['config.json: not a regular file; family, architecture and precision not inferred from it']);
  assert.equal(r.value.modelfile.family, 'llama', 'the fields still come from the weights');
});
