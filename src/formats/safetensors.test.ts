import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PackError, type ErrorCode } from '../errors.js';
import { tempDir } from '../test-support/tmp.js';
import {
  encodeHead,
  mutate,
  planSafetensors,
  prng,
  safetensorsBytes,
  scratchFile,
  writeRawSafetensors,
  writeSafetensors,
  writeShardedSafetensors,
  type TensorSpecs,
} from '../test-support/safetensors-writer.js';
import { SAFETENSORS_DTYPE_BITS, SAFETENSORS_MAX_HEADER_BYTES, readSafetensorsHeader, type SafetensorsHeader } from './safetensors.js';
import { describeSafetensors } from './safetensors-describe.js';
import { readSafetensorsModel } from './safetensors-model.js';

/** Asserts a PackError with this code whose message starts with `subject` and matches `re`, with a hint. */
async function rejectsWith(p: Promise<unknown>, code: ErrorCode, subject: string, re?: RegExp): Promise<PackError> {
  let caught: unknown;
  await assert.rejects(p, (e) => {
    caught = e;
    return true;
  });
  assert.ok(caught instanceof PackError, `a PackError, not ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.ok(caught.message.startsWith(`${subject}: `), caught.message);
  if (re) assert.match(caught.message, re);
  assert.ok(caught.hint && caught.hint.length > 10, `a hint for: ${caught.message}`);
  return caught;
}

const corrupt = (p: Promise<unknown>, path: string, re: RegExp) => rejectsWith(p, 'CORRUPT', path, re);

const MIXED: TensorSpecs = {
  'model.embed_tokens.weight': { dtype: 'BF16', shape: [32, 8] },
  'model.norm.weight': { dtype: 'F32', shape: [8] },
  'lm_head.weight': { dtype: 'BF16', shape: [32, 8] },
  'packed.f4': { dtype: 'F4', shape: [6] },
  'packed.f6': { dtype: 'F6_E2M3', shape: [4] },
  'mask': { dtype: 'BOOL', shape: [3] },
  'empty': { dtype: 'F16', shape: [0, 5] },
  'scalar': { dtype: 'I64', shape: [] },
};

test('the header: every field, tensors in data order, sub-byte dtypes sized in bits', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'model.safetensors');
  const plan = await writeSafetensors(path, MIXED, { metadata: { format: 'pt', note: 'ü' }, data: 'pattern' });
  const h = await readSafetensorsHeader(path);
  assert.equal(h.path, path);
  assert.equal(h.headerBytes, plan.headerBytes);
  assert.equal(h.headerBytes % 8, 0, 'padded to 8 like the reference writer');
  assert.equal(h.dataOffset, 8 + h.headerBytes);
  assert.equal(h.fileSize, plan.fileSize);
  assert.deepEqual(h.metadata, { format: 'pt', note: 'ü' });
  // 512 + 32 + 512 + 3 (6 × 4 bits) + 3 (4 × 6 bits) + 3 + 0 + 8 bytes
  assert.equal(h.fileSize - h.dataOffset, 1073);
  assert.deepEqual(
    h.tensors.map((x) => [x.name, x.dtype, x.shape, x.begin, x.end]),
    [
      ['model.embed_tokens.weight', 'BF16', [32, 8], 0, 512],
      ['model.norm.weight', 'F32', [8], 512, 544],
      ['lm_head.weight', 'BF16', [32, 8], 544, 1056],
      ['packed.f4', 'F4', [6], 1056, 1059],
      ['packed.f6', 'F6_E2M3', [4], 1059, 1062],
      ['mask', 'BOOL', [3], 1062, 1065],
      ['empty', 'F16', [0, 5], 1065, 1065],
      ['scalar', 'I64', [], 1065, 1073],
    ],
  );
});

test('describeSafetensors: parameters, paramSize, dtype counts, bytes and the dominant precision', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'model.safetensors');
  await writeSafetensors(path, MIXED);
  const d = describeSafetensors([await readSafetensorsHeader(path)]);
  assert.deepEqual(d, {
    tensorCount: 8,
    parameterCount: 256 + 8 + 256 + 6 + 4 + 3 + 0 + 1,
    parameterSize: '534',
    tensorBytes: 1073,
    dtypes: { BF16: 512, F32: 8, F4: 6, F6_E2M3: 4, BOOL: 3, I64: 1, F16: 0 },
    precision: 'bfloat16',
  });
  assert.deepEqual(Object.keys(d.dtypes), ['BF16', 'F32', 'F4', 'F6_E2M3', 'BOOL', 'I64', 'F16'], 'largest first');
  // An empty file ({} header): nothing, and no precision.
  const empty = join(dir, 'empty.safetensors');
  await writeSafetensors(empty, {});
  const e = await readSafetensorsHeader(empty);
  assert.deepEqual([e.headerBytes, e.tensors, e.metadata], [8, [], undefined]);
  assert.deepEqual(describeSafetensors([e]), { tensorCount: 0, parameterCount: 0, parameterSize: '0', tensorBytes: 0, dtypes: {} });
});

test('precision words follow model-spec / torch_dtype names for every dtype', async (t) => {
  const dir = await tempDir(t);
  const want: Record<string, string> = {
    F64: 'float64', F32: 'float32', F16: 'float16', BF16: 'bfloat16', F8_E4M3: 'float8_e4m3', F8_E5M2: 'float8_e5m2',
    C64: 'complex64', I8: 'int8', I16: 'int16', I32: 'int32', I64: 'int64', U8: 'uint8', U16: 'uint16', U32: 'uint32',
    U64: 'uint64', BOOL: 'bool', F8_E8M0: 'float8_e8m0', F8_E4M3FNUZ: 'float8_e4m3fnuz', F8_E5M2FNUZ: 'float8_e5m2fnuz',
    F4: 'float4_e2m1', F6_E2M3: 'float6_e2m3', F6_E3M2: 'float6_e3m2',
  };
  assert.deepEqual(Object.keys(want).sort(), Object.keys(SAFETENSORS_DTYPE_BITS).sort(), 'every dtype has a word');
  for (const [dtype, word] of Object.entries(want)) {
    const path = join(dir, `${dtype}.safetensors`);
    await writeSafetensors(path, { w: { dtype, shape: [4, 4] }, b: { dtype: 'F32', shape: [1] } });
    const d = describeSafetensors([await readSafetensorsHeader(path)]);
    assert.equal(d.precision, word, dtype);
    assert.equal(d.parameterCount, 17, dtype);
  }
});

test('a 7.24B sharded model (sparse files): parameters, paramSize, precision and the index cross-check', async (t) => {
  const dir = await tempDir(t);
  const m = await writeShardedSafetensors(
    dir,
    {
      'model-00001-of-00002.safetensors': { 'model.layers.0.w': { dtype: 'BF16', shape: [3_620_866_048] }, 'model.norm.weight': { dtype: 'F32', shape: [4096] } },
      'model-00002-of-00002.safetensors': { 'model.layers.1.w': { dtype: 'BF16', shape: [3_620_861_952] } },
    },
    { data: 'sparse' },
  );
  for (const arg of [dir, m.indexPath]) {
    const model = await readSafetensorsModel(arg);
    assert.equal(model.indexPath, m.indexPath);
    assert.deepEqual(model.files, m.files);
    assert.deepEqual(model.warnings, []);
    assert.equal(model.totalSize, m.totalSize);
    assert.deepEqual(model.description, {
      tensorCount: 3,
      parameterCount: 7_241_732_096,
      parameterSize: '7.24B',
      tensorBytes: 7_241_728_000 * 2 + 4096 * 4, // BF16 bytes + F32 bytes
      dtypes: { BF16: 7_241_728_000, F32: 4096 },
      precision: 'bfloat16',
    });
    assert.equal(model.description.tensorBytes, m.totalSize);
    assert.deepEqual(model.headers.map((h) => h.tensors.length), [2, 1]);
  }
});

test('sharded: total_size mismatch, tensors outside weight_map and duplicates are warnings', async (t) => {
  const dir = await tempDir(t);
  const shards = {
    'a.safetensors': { x: { dtype: 'F16', shape: [10] }, extra: { dtype: 'F16', shape: [2] } },
    'b.safetensors': { y: { dtype: 'F16', shape: [4] }, x: { dtype: 'F16', shape: [10] } },
  };
  const m = await writeShardedSafetensors(dir, shards, { totalSize: 999, omitFromIndex: ['extra'], weightMap: { x: 'a.safetensors' } });
  const model = await readSafetensorsModel(m.indexPath);
  assert.equal(model.totalSize, 999);
  assert.equal(model.description.tensorCount, 3, 'x once, y, extra');
  assert.equal(model.description.parameterCount, 16);
  assert.equal(model.description.tensorBytes, 32);
  assert.equal(model.warnings.length, 3, model.warnings.join('\n'));
  assert.match(model.warnings.join('\n'), /1 tensor\(s\) in the shards are not in weight_map \(first "extra"\); counted/);
  assert.match(model.warnings.join('\n'), /1 tensor\(s\) appear in more than one shard \(first "x"\); counted once/);
  assert.match(model.warnings.join('\n'), /metadata\.total_size is 999 but the shards' tensors hold 32 bytes/);
  // No metadata at all: nothing to check, nothing to warn about.
  const dir2 = await tempDir(t);
  const m2 = await writeShardedSafetensors(dir2, { 's.safetensors': { w: { dtype: 'I8', shape: [3] } } }, { totalSize: null });
  const model2 = await readSafetensorsModel(m2.indexPath);
  assert.equal(model2.totalSize, undefined);
  assert.deepEqual(model2.warnings, []);
  assert.equal(model2.description.precision, 'int8');
  // A total_size that is not a number is not checked (warned).
  await writeFile(m2.indexPath, JSON.stringify({ metadata: { total_size: 'big' }, weight_map: { w: 's.safetensors' } }));
  assert.match((await readSafetensorsModel(m2.indexPath)).warnings.join(), /total_size is not a byte count/);
});

test('sharded: a missing shard, an escaping or absolute shard name, a tensor in the wrong shard', async (t) => {
  const dir = await tempDir(t);
  const base = { 'a.safetensors': { x: { dtype: 'F32', shape: [2] } }, 'b.safetensors': { y: { dtype: 'F32', shape: [2] } } };
  const index = join(dir, 'model.safetensors.index.json');

  await writeShardedSafetensors(dir, base, { weightMap: { z: 'c.safetensors' } });
  await rejectsWith(readSafetensorsModel(dir), 'NOT_FOUND', index, /weight_map names shard "c\.safetensors", which does not exist/);

  await writeShardedSafetensors(dir, base, { weightMap: { x: '../x.safetensors' } });
  await writeSafetensors(join(dir, '..', 'x.safetensors'), { x: { dtype: 'F32', shape: [2] } });
  t.after(() => import('node:fs/promises').then((f) => f.rm(join(dir, '..', 'x.safetensors'), { force: true })));
  await rejectsWith(readSafetensorsModel(index), 'UNSAFE_PATH', index, /weight_map\["x"\].*contains \.\./);

  for (const bad of ['/etc/passwd', 'C:/x.safetensors', 'a\\b.safetensors', '.', '']) {
    await writeShardedSafetensors(dir, base, { weightMap: { x: bad } });
    await rejectsWith(readSafetensorsModel(index), 'UNSAFE_PATH', index);
  }

  await writeShardedSafetensors(dir, base, { weightMap: { x: 'b.safetensors', y: 'a.safetensors' } });
  await rejectsWith(
    readSafetensorsModel(index),
    'CORRUPT',
    index,
    /weight_map puts tensor "x" in "b\.safetensors", which does not hold it \(and 1 more tensor\(s\) of weight_map are missing\)/,
  );

  // A shard that is itself broken fails with the shard's own error.
  await writeShardedSafetensors(dir, base);
  await truncate(join(dir, 'b.safetensors'), 20);
  await corrupt(readSafetensorsModel(index), join(dir, 'b.safetensors'), /exceeds the file size/);

  // ./ and // in a shard name are normalised, not refused.
  await writeShardedSafetensors(dir, base, { weightMap: { x: './/a.safetensors' } });
  assert.deepEqual((await readSafetensorsModel(index)).files, [join(dir, 'a.safetensors'), join(dir, 'b.safetensors')]);
});

test('sharded: a malformed or oversized index', async (t) => {
  const dir = await tempDir(t);
  await writeSafetensors(join(dir, 'a.safetensors'), { x: { dtype: 'F32', shape: [2] } });
  const index = join(dir, 'model.safetensors.index.json');
  const cases: Array<[string | Buffer, RegExp]> = [
    ['{"weight_map": ', /not valid JSON/],
    ['[]', /not a JSON object/],
    ['{"metadata": {}}', /weight_map is missing/],
    ['{"weight_map": []}', /weight_map is missing or not a JSON object/],
    ['{"weight_map": {}}', /weight_map names no tensor/],
    ['{"weight_map": {"x": 3}}', /weight_map\["x"\] is not a file name/],
    [Buffer.from([0x7b, 0xff, 0x7d]), /not valid UTF-8/],
  ];
  for (const [text, re] of cases) {
    await writeFile(index, text);
    await rejectsWith(readSafetensorsModel(index), 'CORRUPT', index, re);
  }
  await writeFile(index, '');
  await truncate(index, 64 * 1024 * 1024 + 1); // sparse: nothing is read
  await rejectsWith(readSafetensorsModel(index), 'SIZE_EXCEEDS_LIMIT', index, /exceeds the 67108864-byte limit/);
});

test('readSafetensorsModel picks the model in a directory, or says why it cannot', async (t) => {
  const dir = await tempDir(t);
  await rejectsWith(readSafetensorsModel(dir), 'NOT_FOUND', dir, /no model\.safetensors\.index\.json and no \.safetensors file/);
  await rejectsWith(readSafetensorsModel(join(dir, 'nope')), 'NOT_FOUND', join(dir, 'nope'));
  await writeSafetensors(join(dir, 'weights.safetensors'), { w: { dtype: 'F16', shape: [2, 2] } });
  let m = await readSafetensorsModel(dir);
  assert.deepEqual([m.files, m.indexPath, m.description.parameterCount], [[join(dir, 'weights.safetensors')], undefined, 4]);
  await writeSafetensors(join(dir, 'other.safetensors'), { w: { dtype: 'F16', shape: [2] } });
  await rejectsWith(readSafetensorsModel(dir), 'USAGE', dir, /several \.safetensors files/);
  await writeSafetensors(join(dir, 'model.safetensors'), { w: { dtype: 'F16', shape: [3] } });
  m = await readSafetensorsModel(dir);
  assert.deepEqual(m.files, [join(dir, 'model.safetensors')]);
  await writeShardedSafetensors(dir, { 'other.safetensors': { w: { dtype: 'F16', shape: [2] } } }, { indexName: 'diffusion_pytorch_model.safetensors.index.json' });
  assert.equal((await readSafetensorsModel(dir)).indexPath, join(dir, 'diffusion_pytorch_model.safetensors.index.json'));
  await writeShardedSafetensors(dir, { 'other.safetensors': { w: { dtype: 'F16', shape: [2] } } }, { indexName: 'x.safetensors.index.json' });
  await rejectsWith(readSafetensorsModel(dir), 'USAGE', dir, /several safetensors indexes/);
  await writeShardedSafetensors(dir, { 'model.safetensors': { w: { dtype: 'F16', shape: [3] } } });
  assert.equal((await readSafetensorsModel(dir)).indexPath, join(dir, 'model.safetensors.index.json'), 'the conventional name wins');
});

test('header length: larger than the file, under 8 bytes, over the 100,000,000-byte limit', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'x.safetensors');
  await writeRawSafetensors(path, { header: {}, headerLength: 1n << 40n });
  await corrupt(readSafetensorsHeader(path), path, /: not a valid safetensors file: header length 2\^40 exceeds the file size \(16 bytes\)$/);
  await writeRawSafetensors(path, { header: {}, headerLength: (1n << 64n) - 1n });
  await corrupt(readSafetensorsHeader(path), path, /header length 18446744073709551615 exceeds the file size/);
  await writeRawSafetensors(path, { header: {}, headerLength: 9 });
  await corrupt(readSafetensorsHeader(path), path, /header length 9 exceeds the file size \(16 bytes\)/);
  await writeRawSafetensors(path, { header: {}, headerLength: 0 });
  await corrupt(readSafetensorsHeader(path), path, /header length 0 is too short/);
  for (const n of [0, 7]) {
    await writeFile(path, Buffer.alloc(n));
    await corrupt(readSafetensorsHeader(path), path, new RegExp(`the file is ${n} bytes, shorter than the 8-byte header length`));
  }

  // Over the limit, in a (sparse) file big enough to hold it: refused before anything is read.
  const big = join(dir, 'big.safetensors');
  await writeRawSafetensors(big, { header: '{}', headerLength: SAFETENSORS_MAX_HEADER_BYTES + 1, dataSize: SAFETENSORS_MAX_HEADER_BYTES, data: 'sparse' });
  const before = process.memoryUsage().arrayBuffers;
  await rejectsWith(readSafetensorsHeader(big), 'SIZE_EXCEEDS_LIMIT', big, /header of 100000001 bytes exceeds the 100,000,000-byte limit/);
  assert.ok(process.memoryUsage().arrayBuffers - before < 50e6, 'nothing of that size was allocated');
  // At the limit the header is read: here `{}` and then NUL bytes, which are not JSON.
  await writeRawSafetensors(big, { header: '{}', pad: false, headerLength: SAFETENSORS_MAX_HEADER_BYTES, dataSize: SAFETENSORS_MAX_HEADER_BYTES, data: 'sparse' });
  await corrupt(readSafetensorsHeader(big), big, /the header is not valid JSON/);
});

test('malformed headers: JSON, UTF-8, object shapes, dtypes, shapes, offsets', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'x.safetensors');
  const one = (over: Record<string, unknown>) => ({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8], ...over } });
  const cases: Array<[string | object, RegExp, number?]> = [
    ['{"w": ', /the header is not valid JSON/],
    ['[1, 2]', /the header does not start with "\{"/],
    [' {}', /does not start with "\{"/],
    ['{}x', /not valid JSON/],
    ['{"a": 1}', /tensor "a" is not a JSON object/],
    [{ __metadata__: { format: 1 } }, /__metadata__ "format" is not a string/],
    [{ __metadata__: ['pt'] }, /__metadata__ is not a JSON object/],
    [one({ dtype: 'F128' }), /tensor "w" has dtype "F128", which is not a safetensors dtype/, 8],
    [one({ dtype: 'toString' }), /dtype "toString", which is not a safetensors dtype/, 8],
    [one({ dtype: 7 }), /dtype 7, which is not/, 8],
    [one({ dtype: undefined }), /dtype undefined, which is not/, 8],
    [one({ shape: [-2] }), /shape that is not a list of non-negative integers/, 8],
    [one({ shape: [2.5] }), /shape that is not a list/, 8],
    [one({ shape: '2' }), /shape that is not a list/, 8],
    [one({ shape: [2 ** 53] }), /shape that is not a list/, 8],
    [one({ data_offsets: [0] }), /data_offsets that are not \[begin, end\]/, 8],
    [one({ data_offsets: [0, 8, 9] }), /data_offsets that are not/, 8],
    [one({ data_offsets: [-1, 7] }), /data_offsets that are not/, 8],
    [one({ data_offsets: ['0', '8'] }), /data_offsets that are not/, 8],
    [one({ data_offsets: [8, 0] }), /data_offsets \[8, 0\] that end before they begin/, 8],
    [one({ data_offsets: [0, 16] }), /tensor "w" ends at data offset 16, past the end of the 8-byte data section \(truncated file\?\)/, 8],
    [one({ shape: [3] }), /tensor "w" holds 8 bytes, but F32 \[3\] needs 12/, 8],
    [one({ shape: [2 ** 40, 2 ** 40] }), /holds 8 bytes, but F32 \[1099511627776, 1099511627776\] needs more than 2\^53 elements/, 8],
    [{ w: { dtype: 'F4', shape: [3], data_offsets: [0, 2] } }, /holds 2 bytes, but F4 \[3\] needs 1\.5 \(not a whole number of bytes\)/, 2],
    [{ w: { dtype: 'F6_E3M2', shape: [2], data_offsets: [0, 2] } }, /F6_E3M2 \[2\] needs 1\.5/, 2],
    [{}, /the last 4 bytes of the data section \(after offset 0\) belong to no tensor/, 4],
  ];
  for (const [header, re, dataSize] of cases) {
    await writeRawSafetensors(path, { header, dataSize: dataSize ?? 0 });
    await corrupt(readSafetensorsHeader(path), path, re);
  }
  await writeFile(path, Buffer.concat([encodeHead('{}'), Buffer.alloc(0)]).fill(0xff, 9, 10));
  await corrupt(readSafetensorsHeader(path), path, /the header is not valid UTF-8/);
  // A very long tensor name is cut short in the message.
  await writeRawSafetensors(path, { header: { ['n'.repeat(5000)]: 1 } });
  const e = await corrupt(readSafetensorsHeader(path), path, /tensor "n+…" is not a JSON object/);
  assert.ok(e.message.length < 400);
});

test('offsets must tile the data section: overlaps, holes, trailing bytes', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'x.safetensors');
  const f = (begin: number, end: number) => ({ dtype: 'U8', shape: [end - begin], data_offsets: [begin, end] });
  await writeRawSafetensors(path, { header: { a: f(0, 8), b: f(4, 12) }, dataSize: 12 });
  await corrupt(readSafetensorsHeader(path), path, /tensor "b" \[4, 12\) overlaps tensor "a" \[0, 8\)/);
  await writeRawSafetensors(path, { header: { a: f(0, 8), b: f(0, 8) }, dataSize: 8 });
  await corrupt(readSafetensorsHeader(path), path, /overlaps/);
  await writeRawSafetensors(path, { header: { a: f(0, 4), z: f(2, 2), b: f(4, 8) }, dataSize: 8 });
  await corrupt(readSafetensorsHeader(path), path, /tensor "a" \[0, 4\) overlaps tensor "z" \[2, 2\)|tensor "z" \[2, 2\) overlaps tensor "a" \[0, 4\)/);
  await writeRawSafetensors(path, { header: { a: f(0, 4), b: f(6, 10) }, dataSize: 10 });
  await corrupt(readSafetensorsHeader(path), path, /2 bytes of the data section before tensor "b" \(offsets 4 to 6\) belong to no tensor/);
  await writeRawSafetensors(path, { header: { a: f(2, 10) }, dataSize: 10 });
  await corrupt(readSafetensorsHeader(path), path, /2 bytes of the data section before tensor "a" \(offsets 0 to 2\)/);
  await writeRawSafetensors(path, { header: { a: f(0, 8) }, dataSize: 9 });
  await corrupt(readSafetensorsHeader(path), path, /the last 1 bytes of the data section \(after offset 8\) belong to no tensor/);
  // A valid file cut short: the last tensor runs past the end.
  await writeSafetensors(path, MIXED);
  const full = planSafetensors(MIXED).fileSize;
  await truncate(path, full - 3);
  await corrupt(readSafetensorsHeader(path), path, /tensor "scalar" ends at data offset 1073, past the end of the 1070-byte data section/);
  // Any order in the JSON is fine; zero-sized tensors may sit anywhere, and __metadata__ may be null.
  await writeRawSafetensors(path, { header: { z: f(8, 12), __metadata__: null, e: f(4, 4), a: f(0, 4), m: f(4, 8), e2: f(12, 12) }, dataSize: 12 });
  const h = await readSafetensorsHeader(path);
  assert.deepEqual(h.tensors.map((x) => x.name), ['a', 'e', 'm', 'z', 'e2']);
  assert.equal(h.metadata, undefined);
});

test('tensor names are data: __proto__, integer-like names, metadata keys', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'x.safetensors');
  const header = '{"__metadata__":{"__proto__":"p","constructor":"c"},"__proto__":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"0":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}';
  await writeRawSafetensors(path, { header, dataSize: 2 });
  const h = await readSafetensorsHeader(path);
  assert.deepEqual(h.tensors.map((x) => x.name), ['0', '__proto__']);
  assert.equal(Object.getPrototypeOf(h.metadata), Object.prototype, 'the prototype was not replaced');
  assert.equal(h.metadata!['__proto__'], 'p');
  assert.deepEqual(Object.keys(h.metadata!), ['__proto__', 'constructor']);
});

test('not a regular file, or missing', async (t) => {
  const dir = await tempDir(t);
  await rejectsWith(readSafetensorsHeader(dir), 'IO', dir, /not a regular file/);
  await rejectsWith(readSafetensorsHeader(join(dir, 'none')), 'NOT_FOUND', join(dir, 'none'));
});

test('quantization from the header: GPTQ, AWQ, bitsandbytes, FP8, MXFP4, __metadata__', async (t) => {
  const dir = await tempDir(t);
  const describe = async (tensors: TensorSpecs, metadata?: Record<string, string>) => {
    const path = join(dir, 'q.safetensors');
    await writeSafetensors(path, tensors, metadata ? { metadata } : {});
    return describeSafetensors([await readSafetensorsHeader(path)]);
  };
  const gptq = {
    'model.embed_tokens.weight': { dtype: 'F16', shape: [64, 16] },
    'l.0.q_proj.qweight': { dtype: 'I32', shape: [256, 64] },
    'l.0.q_proj.qzeros': { dtype: 'I32', shape: [16, 8] },
    'l.0.q_proj.scales': { dtype: 'F16', shape: [16, 64] },
    'l.0.q_proj.g_idx': { dtype: 'I32', shape: [2048] },
  };
  let d = await describe(gptq);
  assert.equal(d.quantization, 'gptq');
  assert.equal(d.precision, 'float16', 'packed int32 words are not the precision');
  assert.deepEqual(d.dtypes, { I32: 16384 + 128 + 2048, F16: 1024 + 1024 });
  const { 'l.0.q_proj.g_idx': _, ...awq } = gptq;
  d = await describe(awq);
  assert.deepEqual([d.quantization, d.precision], ['awq', 'float16']);
  d = await describe({
    'l.0.weight': { dtype: 'U8', shape: [4096, 1] },
    'l.0.weight.absmax': { dtype: 'F32', shape: [128] },
    'l.0.weight.quant_map': { dtype: 'F32', shape: [16] },
    'l.0.weight.quant_state.bitsandbytes__nf4': { dtype: 'U8', shape: [90] },
    'norm.weight': { dtype: 'BF16', shape: [64] },
  });
  assert.deepEqual([d.quantization, d.precision], ['bitsandbytes-nf4', 'bfloat16']);
  d = await describe({ 'l.0.weight': { dtype: 'I8', shape: [64, 64] }, 'l.0.SCB': { dtype: 'F32', shape: [64] }, 'n.weight': { dtype: 'F16', shape: [64] } });
  assert.deepEqual([d.quantization, d.precision], ['bitsandbytes-int8', 'int8']);
  d = await describe({
    'l.0.weight': { dtype: 'F8_E4M3', shape: [256, 256] },
    'l.0.weight_scale_inv': { dtype: 'F32', shape: [2, 2] },
    'embed.weight': { dtype: 'BF16', shape: [256, 16] },
  });
  assert.deepEqual([d.quantization, d.precision], ['fp8', 'float8_e4m3']);
  d = await describe({
    'experts.gate_up_proj_blocks': { dtype: 'U8', shape: [32, 90, 16] },
    'experts.gate_up_proj_scales': { dtype: 'U8', shape: [32, 90] },
    'embed.weight': { dtype: 'BF16', shape: [64, 16] },
  });
  assert.deepEqual([d.quantization, d.precision], ['mxfp4', 'bfloat16']);
  d = await describe({ w: { dtype: 'I8', shape: [8] } }, { quant_method: 'compressed-tensors' });
  assert.deepEqual([d.quantization, d.precision], ['compressed-tensors', 'int8']);
  d = await describe({ 'l.weight': { dtype: 'BF16', shape: [8] }, 'l.bias': { dtype: 'BF16', shape: [8] } }, { format: 'pt' });
  assert.equal(d.quantization, undefined);
  assert.ok(!('quantization' in d));
});

// ------------------------------------------------------------------------------------------------
// Fuzz: seeded mutations of valid files. Each must parse (and then be self-consistent) or fail
// with CORRUPT / SIZE_EXCEEDS_LIMIT; nothing else, no hang, no allocation of a claimed length.

function checkConsistent(h: SafetensorsHeader, size: number): void {
  assert.equal(h.dataOffset, 8 + h.headerBytes);
  assert.equal(h.fileSize, size);
  assert.ok(h.dataOffset <= size);
  let pos = 0;
  for (const x of h.tensors) {
    assert.equal(x.begin, pos);
    const elements = x.shape.reduce((a, b) => a * b, 1);
    assert.equal(((x.end - x.begin) * 8) / SAFETENSORS_DTYPE_BITS[x.dtype], elements);
    pos = x.end;
  }
  assert.equal(h.dataOffset + pos, size);
  describeSafetensors([h]);
}

test('fuzz: 2,000 seeded mutations of valid safetensors files parse or fail cleanly', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'fuzz.safetensors');
  const bases = [
    safetensorsBytes(MIXED, { metadata: { format: 'pt' }, data: 'pattern' }),
    safetensorsBytes({}),
    safetensorsBytes({ a: { dtype: 'F4', shape: [2, 2] }, b: { dtype: 'U8', shape: [0] }, c: { dtype: 'C64', shape: [1] } }, { data: 'pattern' }),
  ];
  const seed = 0x5afe7e45;
  const rand = prng(seed);
  const outcomes = new Map<string, number>();
  const file = await scratchFile(path);
  t.after(() => file.close());
  const started = Date.now();
  for (let i = 0; i < 2000; i++) {
    const base = bases[i % bases.length]!;
    const { bytes, ops } = mutate(base, rand, { hotEnd: 8 + Number(base.readBigUInt64LE(0)), lengthPrefix: true });
    await file.set(bytes);
    const where = `seed ${seed}, case ${i}: ${ops.join(', ')}`;
    try {
      checkConsistent(await readSafetensorsHeader(path), bytes.length);
      outcomes.set('ok', (outcomes.get('ok') ?? 0) + 1);
    } catch (e) {
      assert.ok(e instanceof PackError, `${where}: ${(e as Error)?.stack ?? String(e)}`);
      assert.ok(e.code === 'CORRUPT' || e.code === 'SIZE_EXCEEDS_LIMIT', `${where}: ${e.code} ${e.message}`);
      assert.ok(e.message.startsWith(`${path}: `) && e.hint, where);
      outcomes.set(e.code, (outcomes.get(e.code) ?? 0) + 1);
    }
  }
  const ms = Date.now() - started;
  t.diagnostic(`outcomes ${JSON.stringify(Object.fromEntries(outcomes))} in ${ms} ms`);
  assert.ok((outcomes.get('ok') ?? 0) > 20 && (outcomes.get('CORRUPT') ?? 0) > 500, JSON.stringify(Object.fromEntries(outcomes)));
  assert.ok(ms < 20_000, `the fuzz took ${ms} ms`);
});

test('fuzz: 300 seeded mutations of an index read or fail cleanly', async (t) => {
  const dir = await tempDir(t);
  const m = await writeShardedSafetensors(dir, {
    'model-00001-of-00002.safetensors': { 'a.weight': { dtype: 'F16', shape: [4, 4] }, 'a.bias': { dtype: 'F16', shape: [4] } },
    'model-00002-of-00002.safetensors': { 'b.weight': { dtype: 'BF16', shape: [4, 4] } },
  });
  await mkdir(join(dir, 'sub'));
  const base = JSON.parse(await readFile(m.indexPath, 'utf8')) as { weight_map: Record<string, unknown>; metadata?: unknown };
  const seed = 0x1dec5;
  const rand = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const names = ['a.weight', 'a.bias', 'b.weight', 'c.weight', '__proto__', ''];
  const values: unknown[] = [
    'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', '../model-00001-of-00002.safetensors', '/etc/hostname',
    'sub', '.', 'model.safetensors.index.json', 'sub/../model-00001-of-00002.safetensors', 'missing.safetensors', 7, null, [], {}, 'a\\b',
  ];
  const totals: unknown[] = [0, 72, 73, -1, 'x', '72', 2 ** 60, null];
  const outcomes = new Map<string, number>();
  const file = await scratchFile(m.indexPath);
  t.after(() => file.close());
  for (let i = 0; i < 300; i++) {
    // Half the cases edit the JSON (names, files, total_size), then any case may also edit bytes.
    const doc = structuredClone(base);
    const ops: string[] = [];
    if (rand() < 0.5) {
      for (let k = 0; k < 1 + Math.floor(rand() * 3); k++) {
        const r = rand();
        if (r < 0.5) {
          const [n, v] = [pick(names), pick(values)];
          Object.defineProperty(doc.weight_map, n, { value: v, enumerable: true, configurable: true, writable: true });
          ops.push(`map ${n}=${JSON.stringify(v)}`);
        } else if (r < 0.7) {
          const n = pick(names);
          delete doc.weight_map[n];
          ops.push(`delete ${n}`);
        } else {
          doc.metadata = { total_size: pick(totals) };
          ops.push(`total ${JSON.stringify(doc.metadata)}`);
        }
      }
    }
    let bytes: Buffer = Buffer.from(JSON.stringify(doc));
    if (rand() < 0.5) {
      const mutated = mutate(bytes, rand);
      bytes = mutated.bytes;
      ops.push(...mutated.ops);
    }
    await file.set(bytes);
    try {
      const model = await readSafetensorsModel(m.indexPath);
      assert.ok(model.description.tensorCount >= 1);
      outcomes.set('ok', (outcomes.get('ok') ?? 0) + 1);
    } catch (e) {
      const where = `seed ${seed}, case ${i}: ${ops.join(', ')}`;
      assert.ok(e instanceof PackError, `${where}: ${(e as Error)?.stack ?? String(e)}`);
      assert.ok(['CORRUPT', 'NOT_FOUND', 'UNSAFE_PATH', 'IO'].includes(e.code), `${where}: ${e.code} ${e.message}`);
      assert.ok(e.message.startsWith(dir) && e.hint, `${where}: ${e.message}`);
      outcomes.set(e.code, (outcomes.get(e.code) ?? 0) + 1);
    }
  }
  t.diagnostic(`outcomes ${JSON.stringify(Object.fromEntries(outcomes))}`);
  for (const k of ['ok', 'CORRUPT', 'NOT_FOUND', 'UNSAFE_PATH']) assert.ok((outcomes.get(k) ?? 0) >= 5, `${k}: ${JSON.stringify(Object.fromEntries(outcomes))}`);
});
