import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { GgufType, readGgufHeader } from './gguf.js';
import { ggufMetadata } from './gguf-metadata.js';
import { kv, sampleModel, writeGguf } from '../test-support/gguf-writer.js';
import { tempDir } from '../test-support/tmp.js';

test('GGUF metadata for a manifest: long arrays and strings summarised, the whole kept under its budget, the same every time', async (t) => {
  const path = join(await tempDir(t), 'm.gguf');
  const spec = sampleModel();
  const long = 'é'.repeat(20 * 1024); // 40 KiB of UTF-8
  const templates = Array.from({ length: 40 }, (_, i) => `${i}`.padEnd(8 * 1024, 'x')); // 40 × 8 KiB, under 64 items
  spec.metadata = [
    ...spec.metadata!,
    ['tokenizer.chat_template', kv.str('{{ messages }}')],
    ['x.long', kv.str(long)],
    ['x.templates', kv.arr(GgufType.STRING, templates)],
    ['__proto__', kv.u32(1)],
  ];
  await writeGguf(path, spec);
  const h = await readGgufHeader(path);
  const md = ggufMetadata(h);
  assert.equal(md['tokenizer.chat_template'], '{{ messages }}');
  assert.deepEqual(md['x.long'], { type: 'string', length: 40 * 1024 }, 'over 32 KiB: summarised, length in UTF-8 bytes');
  assert.deepEqual(md['tokenizer.ggml.tokens'], { type: 'array', elementType: 'string', length: 300 }, 'over 64 items');
  assert.deepEqual(md['x.templates'], { type: 'array', elementType: 'string', length: 40 }, 'the largest value goes while the whole is over 256 Ki');
  assert.equal(Object.getOwnPropertyDescriptor(md, '__proto__')?.value, 1, 'an own key, not the prototype');
  assert.ok(JSON.stringify(md).length <= 256 * 1024);
  assert.deepEqual(ggufMetadata(await readGgufHeader(path)), md);
  // With room to spare, the same array stays whole.
  assert.equal((ggufMetadata(h, { maxTotalBytes: 1 << 20 })['x.templates'] as string[]).length, 40);
});

test('GGUF metadata of many keys (or huge key names) stays under its budget: the largest entries are left out', async (t) => {
  const path = join(await tempDir(t), 'many.gguf');
  const spec = sampleModel();
  const many = Array.from({ length: 30_000 }, (_, i): [string, ReturnType<typeof kv.u32>] => [`x.${String(i).padStart(5, '0')}.${'k'.repeat(120)}`, kv.u32(i)]);
  spec.metadata = [...spec.metadata!, ['y'.repeat(300 * 1024), kv.bool(true)], ...many];
  await writeGguf(path, spec);
  const h = await readGgufHeader(path);
  const md = ggufMetadata(h);
  const size = JSON.stringify(md).length;
  assert.ok(size <= 256 * 1024, `${size} characters`);
  assert.equal(md['general.architecture'], 'llama', 'small keys are kept');
  assert.equal(md['y'.repeat(300 * 1024)], undefined, 'the largest entry went first');
  assert.ok(Object.keys(md).length > 1000, 'as many keys as fit');
  assert.deepEqual(ggufMetadata(await readGgufHeader(path)), md, 'the same every time');
});
