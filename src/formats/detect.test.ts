import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PackError } from '../errors.js';
import { tempDir } from '../test-support/tmp.js';
import { bytesField, encodeOnnxModel, tag, varint, varintField } from '../test-support/onnx-writer.js';
import { encodeHead, mutate, prng, safetensorsBytes, scratchFile } from '../test-support/safetensors-writer.js';
import { chooseFormat, detectModelFormat, looksLikeSafetensors, type ModelFormat } from './detect.js';
import { readSafetensorsHeader } from './safetensors.js';
import { sniffOnnx } from './onnx.js';

const GGUF = Buffer.concat([Buffer.from('GGUF'), Buffer.from([3, 0, 0, 0]), Buffer.alloc(16)]);
const ST = safetensorsBytes({ 'w.weight': { dtype: 'BF16', shape: [4, 4] } }, { metadata: { format: 'pt' } });
const ONNX = encodeOnnxModel();

test('each format by its content, whatever the file is called', async (t) => {
  const dir = await tempDir(t);
  const cases: Array<[string, Uint8Array, ModelFormat | undefined]> = [
    ['model.gguf', GGUF, 'gguf'],
    ['weights.bin', GGUF, 'gguf'],
    ['model.safetensors', GGUF, 'gguf'],
    ['just-magic', Buffer.from('GGUF'), 'gguf'],
    ['model.safetensors', ST, 'safetensors'],
    ['pytorch_model.bin', ST, 'safetensors'],
    ['model.onnx', ST, 'safetensors'],
    ['empty-header.safetensors', encodeHead('{}'), 'safetensors'],
    ['model.onnx', ONNX, 'onnx'],
    ['model.pb', ONNX, 'onnx'],
    ['model.gguf', ONNX, 'onnx'],
    // The name alone never makes a format.
    ['config.safetensors', Buffer.from('{"weight_map": {}}'), undefined],
    ['model.onnx', Buffer.from('not a model at all\n'), undefined],
    ['model.gguf', Buffer.from('GGU'), undefined],
    ['model.gguf', Buffer.from('gguf....'), undefined],
    ['empty.safetensors', Buffer.alloc(0), undefined],
    ['zeros.onnx', Buffer.alloc(64), undefined],
  ];
  for (const [name, bytes, want] of cases) {
    const path = join(dir, name);
    await writeFile(path, bytes);
    assert.equal(await detectModelFormat(path), want, `${name}: ${Buffer.from(bytes).subarray(0, 12).toString('hex')}`);
  }
});

test('safetensors plausibility: a length that fits, then "{" and "\\"" or "}"; the full check is the reader', async (t) => {
  const head = (n: number, text: string) => {
    const b = Buffer.alloc(8 + text.length);
    b.writeBigUInt64LE(BigInt(n));
    b.write(text, 8, 'latin1');
    return b;
  };
  assert.equal(looksLikeSafetensors(head(2, '{}'), 10), true);
  assert.equal(looksLikeSafetensors(head(8, '{  \n "a"'), 16), true);
  assert.equal(looksLikeSafetensors(head(8, '{       '), 16), false, 'a header of only white space');
  assert.equal(looksLikeSafetensors(head(8, '{       '), 4000), false);
  assert.equal(looksLikeSafetensors(head(5000, '{       '), 6000), true, 'white space as far as was read, header continues');
  assert.equal(looksLikeSafetensors(head(2, '[]'), 10), false);
  assert.equal(looksLikeSafetensors(head(2, ' {'), 10), false);
  assert.equal(looksLikeSafetensors(head(2, '{x'), 10), false);
  assert.equal(looksLikeSafetensors(head(3, '{}'), 10), false, 'the header does not fit in the file');
  assert.equal(looksLikeSafetensors(head(1, '{}'), 10), false);
  assert.equal(looksLikeSafetensors(head(100_000_001, '{}'), 200_000_000), false, 'over the limit');
  assert.equal(looksLikeSafetensors(head(2, '{'), 10), false, 'shorter than 10 bytes read');

  // Plausible is not valid: detection says safetensors, the reader says what is wrong.
  const dir = await tempDir(t);
  const path = join(dir, 'model.safetensors');
  await writeFile(path, Buffer.concat([encodeHead('{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}'), Buffer.alloc(4)]));
  assert.equal(await detectModelFormat(path), 'safetensors');
  await assert.rejects(readSafetensorsHeader(path), (e) => e instanceof PackError && e.code === 'CORRUPT');
});

test('content that fits two formats: the extension decides, else gguf, safetensors, onnx in that order', async (t) => {
  // Bytes 0-7 read as a header length of 85,067,528 and byte 8 is "{", byte 9 '"': plausible
  // safetensors. As protobuf the same bytes are ir_version 7, a producer_name ending in "{", a
  // domain, an opset and a graph that runs (sparse) to the end of the file: valid ONNX.
  const prefix = Buffer.concat([
    varintField(1, 7),
    bytesField(2, Buffer.from([0, 0, 0, 0, 0x7b])),
    bytesField(4, 'abc'),
    bytesField(8, varintField(2, 13)),
  ]);
  assert.equal(prefix.readBigUInt64LE(0), 85_067_528n);
  const total = 90_000_000;
  const graphLen = total - prefix.length - 1 - 4;
  const head = Buffer.concat([prefix, tag(7, 2), varint(graphLen)]);
  assert.equal(head.length + graphLen, total);
  const dir = await tempDir(t);
  const want: Record<string, ModelFormat> = { 'm.onnx': 'onnx', 'm.safetensors': 'safetensors', 'm.ONNX': 'onnx', 'm.bin': 'safetensors', m: 'safetensors' };
  for (const [name, format] of Object.entries(want)) {
    const path = join(dir, name);
    const fh = await open(path, 'w');
    await fh.write(head, 0, head.length, 0);
    await fh.truncate(total);
    await fh.close();
    assert.equal(await detectModelFormat(path), format, name);
  }
  assert.equal((await sniffOnnx(join(dir, 'm.bin')))?.domain, 'abc');

  assert.equal(chooseFormat([], 'x.onnx'), undefined);
  assert.equal(chooseFormat(['onnx'], 'x.gguf'), 'onnx', 'one fit: the name is not asked');
  assert.equal(chooseFormat(['onnx', 'gguf'], 'x.GGUF'), 'gguf');
  assert.equal(chooseFormat(['onnx', 'gguf'], 'x.safetensors'), 'gguf');
  assert.equal(chooseFormat(['onnx', 'safetensors'], 'x'), 'safetensors');
});

test('detectModelFormat: a directory or a missing file is an error, not undefined', async (t) => {
  const dir = await tempDir(t);
  await assert.rejects(detectModelFormat(dir), (e) => e instanceof PackError && e.code === 'IO');
  await assert.rejects(detectModelFormat(join(dir, 'x.gguf')), (e) => e instanceof PackError && e.code === 'NOT_FOUND');
});

test('fuzz: 900 seeded mutations of each format give a format or undefined, never an error', async (t) => {
  const dir = await tempDir(t);
  const seed = 0xde7ec7;
  const rand = prng(seed);
  const bases: Array<[string, Buffer]> = [['x.gguf', GGUF], ['x.safetensors', ST], ['x.onnx', ONNX]];
  const seen = new Map<string, number>();
  for (const [name, base] of bases) {
    const path = join(dir, name);
    const file = await scratchFile(path);
    t.after(() => file.close());
    for (let i = 0; i < 300; i++) {
      const { bytes, ops } = mutate(base, rand, { hotEnd: 16, lengthPrefix: name.endsWith('.safetensors') });
      await file.set(bytes);
      let got: ModelFormat | undefined;
      try {
        got = await detectModelFormat(path);
      } catch (e) {
        assert.fail(`seed ${seed}, ${name} case ${i}: ${ops.join(', ')}: ${(e as Error)?.stack ?? String(e)}`);
      }
      const key = `${name}→${got ?? 'none'}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
  }
  t.diagnostic(JSON.stringify(Object.fromEntries(seen)));
  for (const key of ['x.gguf→gguf', 'x.gguf→none', 'x.safetensors→safetensors', 'x.safetensors→none', 'x.onnx→onnx', 'x.onnx→none']) {
    assert.ok((seen.get(key) ?? 0) > 5, `${key}: ${JSON.stringify(Object.fromEntries(seen))}`);
  }
});
