/** The GGUF reader on bad input: truncated, huge, corrupt, unsupported and over-limit headers, missing files. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { PackError } from '../errors.js';
import { tempDir } from '../test-support/tmp.js';
import {
  allTypesMetadata,
  arr,
  encodeGguf,
  kv,
  sampleModel,
  tensorBytes,
  writeBytes,
  writeGguf,
  type GgufWriteSpec,
} from '../test-support/gguf-writer.js';
import { GgufType, readGgufHeader } from './gguf.js';

async function rejects(p: Promise<unknown>, code: string, pattern?: RegExp, path?: string): Promise<PackError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof PackError, `expected a PackError, got ${(e as Error)?.stack ?? String(e)}`);
    assert.equal(e.code, code, e.message);
    if (pattern) assert.match(e.message, pattern);
    if (path) assert.ok(e.message.startsWith(`${path}: `), e.message);
    return e;
  }
  assert.fail(`expected a ${code} error`);
}

/** Overwrites the field described by `what` (see EncodedGguf.fields) with value. */
function patched(spec: GgufWriteSpec, what: string, value: bigint | number): { bytes: Buffer; size: number } {
  const enc = encodeGguf(spec);
  const f = enc.fields.find((x) => x.what === what);
  assert.ok(f, `no field '${what}' in ${enc.fields.map((x) => x.what).join(', ')}`);
  const bytes = Buffer.from(enc.header);
  if (f.size === 8) bytes.writeBigUInt64LE(BigInt(value), f.at);
  else bytes.writeUInt32LE(Number(value), f.at);
  return { bytes, size: enc.dataOffset + enc.dataSize };
}

test('truncated anywhere in the header, or in the tensor data: CORRUPT, naming the file', async (t) => {
  const dir = await tempDir(t);
  const enc = encodeGguf({ ...sampleModel(), metadata: [...sampleModel().metadata!, ...allTypesMetadata().slice(1)] });
  const cuts = new Set<number>();
  for (let i = 0; i < 64; i++) cuts.add(i);
  for (let i = 64; i < enc.header.length; i += 17) cuts.add(i);
  // both sides of every count and length field (array items: one in ten)
  enc.fields.filter((f, i) => !f.what.includes('[') || i % 10 === 0).forEach((f) => [0, 1, f.size - 1].forEach((d) => cuts.add(f.at + d)));
  let n = 0;
  const p = join(dir, 'cut.gguf');
  await writeBytes(p, enc.header);
  // longest first, each a truncate(2) of the same file
  for (const cut of [...cuts].filter((c) => c >= 0 && c < enc.header.length).sort((a, b) => b - a)) {
    await truncate(p, cut);
    await rejects(readGgufHeader(p), 'CORRUPT', /not a valid GGUF file( at byte \d+)?: .*truncated/, p);
    n++;
  }
  assert.ok(n > 600, `${n} cuts`);
  await rejects(readGgufHeader(p), 'CORRUPT', /the magic needs 4 bytes at byte 0, but the file has 0 bytes/);
  // the header whole, the data one byte short
  const q = join(dir, 'short-data.gguf');
  const spec = sampleModel();
  const last = spec.tensors!.at(-1)!;
  const dataEnd = enc.dataOffset + Number(enc.tensorOffsets.at(-1)) + tensorBytes(last);
  for (const size of [enc.header.length, dataEnd - 1]) {
    await writeBytes(q, enc.header, size);
    await rejects(readGgufHeader(q), 'CORRUPT', /the data of tensor '.*' ends at byte \d+, but the file has \d+ bytes \(truncated\?\)/, q);
    // without the bounds check the header alone is enough
    assert.equal((await readGgufHeader(q, { checkDataBounds: false })).tensorCount, 21);
  }
  await writeBytes(q, enc.header, dataEnd);
  assert.equal((await readGgufHeader(q)).tensorCount, 21);
});

test('huge counts and lengths fail at once, before anything is allocated', async (t) => {
  const dir = await tempDir(t);
  const cases: Array<[string, bigint | number, RegExp]> = [
    ['tensor count', 1n << 63n, /claims 9223372036854775808 tensors, more than the remaining \d+ bytes of the file can hold \(truncated or corrupt\)/],
    ['metadata count', (1n << 64n) - 1n, /claims 18446744073709551615 metadata keys/],
    ['length of key general.architecture', 1n << 60n, /metadata key #0 is a string of 1152921504606846976 bytes, but only \d+ bytes of the file remain \(truncated or corrupt\)/],
    ['length of general.name', (1n << 64n) - 1n, /the value of 'general.name' is a string of 18446744073709551615 bytes/],
    ['count of tokenizer.ggml.tokens', 1n << 62n, /the value of 'tokenizer.ggml.tokens' claims 4611686018427387904 array elements/],
    ['count of tokenizer.ggml.scores', 1n << 40n, /claims 1099511627776 array elements/],
    ['element type of tokenizer.ggml.scores', 0xffffffff, /the value of 'tokenizer.ggml.scores' has unknown value type 4294967295/],
    ['type of general.name', 13, /the type of 'general.name' has unknown value type 13/],
    ['length of tensor output.weight', 1n << 60n, /the name of tensor #20 is a string of 1152921504606846976 bytes/],
    ['n_dims of token_embd.weight', 0xffffffff, /tensor 'token_embd.weight' has 4294967295 dimensions \(at most 8\)/],
    ['dim 1 of token_embd.weight', 1n << 63n, /tensor 'token_embd.weight' dimension 1 is 9223372036854775808/],
    ['dim 0 of output.weight', 1n << 40n, /the data of tensor 'output.weight' ends at byte \d+, but the file has \d+ bytes/],
    ['dim 0 of output.weight', 1n << 52n, /tensor 'output.weight' has 4503599627370496 × 300 elements/],
    ['dim 0 of token_embd.weight', 100, /tensor 'token_embd.weight' has rows of 100 elements, not a multiple of the Q4_K block size 256/],
    ['offset of blk.0.attn_q.weight', (1n << 64n) - 32n, /tensor 'blk.0.attn_q.weight' has data offset 18446744073709551584/],
    ['offset of blk.0.attn_q.weight', 1n << 40n, /the data of tensor 'blk.0.attn_q.weight' ends at byte \d+, but the file has 924576 bytes \(truncated\?\)/],
    ['offset of blk.0.attn_q.weight', 8, /data offset 8 is not a multiple of the alignment 32/],
  ];
  for (const [what, value, pattern] of cases) {
    const { bytes, size } = patched(sampleModel(), what, value);
    const p = join(dir, 'huge.gguf');
    await writeBytes(p, bytes, size);
    const before = process.memoryUsage();
    const t0 = performance.now();
    await rejects(readGgufHeader(p), 'CORRUPT', pattern, p);
    assert.ok(performance.now() - t0 < 1000, what);
    const after = process.memoryUsage();
    assert.ok(after.arrayBuffers - before.arrayBuffers < 64 << 20, `${what}: ${after.arrayBuffers - before.arrayBuffers} bytes of buffers`);
  }
});

test('corrupt headers: bad magic, bad values, duplicates, bad shapes and alignment are CORRUPT', async (t) => {
  const dir = await tempDir(t);
  const cases: Array<[string, GgufWriteSpec | Buffer, RegExp]> = [
    ['magic', Buffer.from('PK\x03\x04 not a gguf at all', 'latin1'), /it starts with 'PK\?\?', not 'GGUF'/],
    ['version0', patched({}, 'version', 0).bytes, /version 0/],
    ['dup-key', { metadata: [['a', kv.u8(1)], ['b', kv.u8(2)], ['a', kv.u8(3)]] }, /metadata key 'a' appears twice/],
    ['empty-key', { metadata: [['', kv.u8(1)]] }, /metadata key #0 is empty/],
    ['dup-tensor', { tensors: [{ name: 'w', dims: [4], type: 0 }, { name: 'w', dims: [4], type: 0 }] }, /tensor name 'w' appears twice/],
    ['dup-odd-name', { tensors: [{ name: `a\nb'${'z'.repeat(200)}`, dims: [4], type: 0 }, { name: `a\nb'${'z'.repeat(200)}`, dims: [4], type: 0 }] }, /tensor name 'a\\u000ab\\'z{96}…' appears twice/],
    ['dims9', { tensors: [{ name: 'w', dims: [1, 1, 1, 1, 1, 1, 1, 1, 1], type: 0 }] }, /tensor 'w' has 9 dimensions/],
    ['block', { tensors: [{ name: 'w', dims: [100, 2], type: 12 }] }, /tensor 'w' has rows of 100 elements, not a multiple of the Q4_K block size 256/],
    ['align-48', { metadata: [['general.alignment', kv.u32(48)]] }, /general.alignment 48 is not a power of two/],
    ['align-0', { metadata: [['general.alignment', kv.u32(0)]] }, /general.alignment 0 is not a power of two/],
    ['align-u64', { metadata: [['general.alignment', kv.u64(32n)]] }, /general.alignment is a uint64, not a uint32/],
  ];
  for (const [name, spec, pattern] of cases) {
    const p = join(dir, `${name}.gguf`);
    if (Buffer.isBuffer(spec)) await writeBytes(p, spec);
    else await writeGguf(p, spec);
    await rejects(readGgufHeader(p), 'CORRUPT', pattern, p);
  }
  // a bool that is neither 0 nor 1
  const enc = encodeGguf(sampleModel());
  const at = enc.fields.find((f) => f.what === 'type of tokenizer.ggml.add_bos_token')!.at + 4;
  const bytes = Buffer.from(enc.header);
  bytes[at] = 2;
  const p = join(dir, 'bool.gguf');
  await writeBytes(p, bytes, enc.dataOffset + enc.dataSize);
  await rejects(readGgufHeader(p), 'CORRUPT', /the value of 'tokenizer.ggml.add_bos_token' has a bool of 2, neither 0 nor 1/, p);
});

test('big-endian files and versions other than 2 and 3 are UNSUPPORTED with a hint', async (t) => {
  const dir = await tempDir(t);
  for (const version of [2, 3]) {
    const p = join(dir, `be${version}.gguf`);
    await writeGguf(p, { ...sampleModel({ version }), bigEndian: true });
    const e = await rejects(readGgufHeader(p), 'UNSUPPORTED', /big-endian GGUF files are not supported/, p);
    assert.match(e.hint ?? '', /gguf-convert-endian/);
  }
  const swapped = Buffer.from(encodeGguf({}).header);
  swapped.write('FUGG', 0, 'latin1');
  const p = join(dir, 'fugg.gguf');
  await writeBytes(p, swapped);
  await rejects(readGgufHeader(p), 'UNSUPPORTED', /big-endian/, p);
  for (const [version, pattern] of [[1, /GGUF version 1 is not supported/], [4, /GGUF version 4 is not supported/], [0x12345678, /version 305419896/]] as const) {
    const q = join(dir, `v${version}.gguf`);
    await writeBytes(q, patched({}, 'version', version).bytes);
    await rejects(readGgufHeader(q), 'UNSUPPORTED', pattern, q);
  }
});

test('limits: strings, arrays, keys, tensors, nesting and header bytes over a limit are SIZE_EXCEEDS_LIMIT', async (t) => {
  const dir = await tempDir(t);
  const p = join(dir, 'm.gguf');
  await writeGguf(p, sampleModel());
  await rejects(readGgufHeader(p, { maxStringBytes: 10 }), 'SIZE_EXCEEDS_LIMIT', /metadata key #0 is a string of 20 bytes, over mpk's limit of 10/, p);
  const long = join(dir, 'long.gguf');
  await writeGguf(long, { metadata: [['k', kv.str('x'.repeat(50))]], tensors: [{ name: 'y'.repeat(60), dims: [1], type: 0 }] });
  await rejects(readGgufHeader(long, { maxStringBytes: 40 }), 'SIZE_EXCEEDS_LIMIT', /the value of 'k' is a string of 50 bytes, over mpk's limit of 40/, long);
  await rejects(readGgufHeader(long, { maxStringBytes: 55 }), 'SIZE_EXCEEDS_LIMIT', /the name of tensor #0 is a string of 60 bytes/, long);
  assert.equal((await readGgufHeader(long, { maxStringBytes: 60 })).tensors[0]!.name.length, 60);
  await rejects(readGgufHeader(p, { maxArrayElements: 500 }), 'SIZE_EXCEEDS_LIMIT', /'tokenizer.ggml.scores' has 300 array elements, over mpk's limit of 500/, p);
  await rejects(readGgufHeader(p, { maxKeys: 3 }), 'SIZE_EXCEEDS_LIMIT', /15 metadata keys/, p);
  await rejects(readGgufHeader(p, { maxTensors: 20 }), 'SIZE_EXCEEDS_LIMIT', /21 tensors/, p);
  for (const chunkSize of [1, 100, 1 << 20]) {
    await rejects(readGgufHeader(p, { maxHeaderBytes: 1000, chunkSize }), 'SIZE_EXCEEDS_LIMIT', /the GGUF header is larger than mpk's limit of 1000 bytes/, p);
  }
  const deep = join(dir, 'deep.gguf');
  await writeGguf(deep, { metadata: [['d', kv.arr(GgufType.ARRAY, [arr(GgufType.ARRAY, [arr(GgufType.ARRAY, [arr(GgufType.ARRAY, [arr(GgufType.UINT8, [1])])])])])]] });
  await rejects(readGgufHeader(deep), 'SIZE_EXCEEDS_LIMIT', /arrays nested more than 4 deep/, deep);
  assert.equal((await readGgufHeader(deep, { maxArrayDepth: 5 })).metadata.size, 1);
});

test('missing files and directories get their usual errors', async (t) => {
  const dir = await tempDir(t);
  await rejects(readGgufHeader(join(dir, 'nope.gguf')), 'NOT_FOUND', /nope.gguf: no such file/);
  const sub = join(dir, 'sub.gguf');
  await mkdir(sub);
  await rejects(readGgufHeader(sub), 'USAGE', /not a regular file/);
});

test('a header cut short is truncated even with data bounds unchecked', async (t) => {
  // (@huggingface/gguf 0.4.6 reads zeros past the end of such a file and returns empty tensor names)
  const dir = await tempDir(t);
  const enc = encodeGguf(sampleModel());
  const p = join(dir, 'cut.gguf');
  await writeBytes(p, enc.header.subarray(0, 5000));
  await rejects(readGgufHeader(p, { checkDataBounds: false }), 'CORRUPT', /truncated/);
  await truncate(p, 0);
  await rejects(readGgufHeader(p), 'CORRUPT', /truncated/);
});
