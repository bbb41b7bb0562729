import { test } from 'node:test';
import assert from 'node:assert/strict';
import { truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PackError } from '../errors.js';
import { rejectsWith } from '../test-support/rejects-with.js';
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
  MIXED_TENSORS,
} from '../test-support/safetensors-writer.js';
import { SAFETENSORS_DTYPE_BITS, SAFETENSORS_MAX_HEADER_BYTES, readSafetensorsHeader, type SafetensorsHeader } from './safetensors.js';
import { describeSafetensors } from './safetensors-describe.js';

const corrupt = (p: Promise<unknown>, path: string, re: RegExp) => rejectsWith(p, 'CORRUPT', path, re);


test('the header: every field, tensors in data order, sub-byte dtypes sized in bits', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'model.safetensors');
  const plan = await writeSafetensors(path, MIXED_TENSORS, { metadata: { format: 'pt', note: 'ü' }, data: 'pattern' });
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
  await writeSafetensors(path, MIXED_TENSORS);
  const full = planSafetensors(MIXED_TENSORS).fileSize;
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
    safetensorsBytes(MIXED_TENSORS, { metadata: { format: 'pt' }, data: 'pattern' }),
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
