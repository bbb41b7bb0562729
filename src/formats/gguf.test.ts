import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, stat, truncate } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { gguf as hfGguf } from '@huggingface/gguf';
import { PackError } from '../errors.js';
import { canonicalJson } from '../oci/canonical-json.js';
import { tempDir } from '../test-support/tmp.js';
import { allTypesMetadata, arr, encodeGguf, kv, sampleModel, tensorBytes, writeBytes, writeGguf, type GgufWriteSpec } from '../test-support/gguf-writer.js';
import { GGML_TYPES, LLAMA_FILE_TYPES, fileTypeName, ggmlTypeId, guessedFileTypeName } from './gguf-types.js';
import { GgufType, plainGgufValue, readGgufHeader, type GgufHeader, type GgufKv } from './gguf.js';
import { describeGguf, describeGgufShards } from './gguf-describe.js';

function allTypesModel(version: number): GgufWriteSpec {
  return {
    version,
    metadata: allTypesMetadata(),
    tensors: [
      { name: 'a', dims: [32, 4], type: ggmlTypeId('Q8_0')! },
      { name: 'b', dims: [256, 2, 3], type: ggmlTypeId('Q4_K')! },
      { name: 'c', dims: [7], type: ggmlTypeId('F32')! },
      { name: 'scalar', dims: [], type: ggmlTypeId('F16')! },
      { name: 'mx', dims: [64, 2], type: ggmlTypeId('MXFP4')! },
    ],
  };
}

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

test('the ggml type table matches ggml-common.h block layouts, and file types are llama.cpp names', () => {
  const expected: Record<string, [number, number, number]> = {
    F32: [0, 1, 4], F16: [1, 1, 2], Q4_0: [2, 32, 18], Q4_1: [3, 32, 20], Q5_0: [6, 32, 22], Q5_1: [7, 32, 24],
    Q8_0: [8, 32, 34], Q8_1: [9, 32, 36], Q2_K: [10, 256, 84], Q3_K: [11, 256, 110], Q4_K: [12, 256, 144],
    Q5_K: [13, 256, 176], Q6_K: [14, 256, 210], Q8_K: [15, 256, 292], IQ2_XXS: [16, 256, 66], IQ2_XS: [17, 256, 74],
    IQ3_XXS: [18, 256, 98], IQ1_S: [19, 256, 50], IQ4_NL: [20, 32, 18], IQ3_S: [21, 256, 110], IQ2_S: [22, 256, 82],
    IQ4_XS: [23, 256, 136], I8: [24, 1, 1], I16: [25, 1, 2], I32: [26, 1, 4], I64: [27, 1, 8], F64: [28, 1, 8],
    IQ1_M: [29, 256, 56], BF16: [30, 1, 2], TQ1_0: [34, 256, 54], TQ2_0: [35, 256, 66], MXFP4: [39, 32, 17],
    NVFP4: [40, 64, 36], Q1_0: [41, 128, 18], Q2_0: [42, 64, 18],
  };
  assert.equal(GGML_TYPES.size, Object.keys(expected).length);
  for (const [name, [id, block, size]] of Object.entries(expected)) {
    assert.deepEqual(GGML_TYPES.get(id), { id, name, blockSize: block, typeSize: size }, name);
  }
  const ft: Record<number, string> = { 0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 7: 'Q8_0', 8: 'Q5_0', 9: 'Q5_1', 10: 'Q2_K', 11: 'Q3_K_S', 12: 'Q3_K_M', 13: 'Q3_K_L', 14: 'Q4_K_S', 15: 'Q4_K_M', 16: 'Q5_K_S', 17: 'Q5_K_M', 18: 'Q6_K', 19: 'IQ2_XXS', 20: 'IQ2_XS', 21: 'Q2_K_S', 22: 'IQ3_XS', 23: 'IQ3_XXS', 24: 'IQ1_S', 25: 'IQ4_NL', 26: 'IQ3_S', 27: 'IQ3_M', 28: 'IQ2_S', 29: 'IQ2_M', 30: 'IQ4_XS', 31: 'IQ1_M', 32: 'BF16', 36: 'TQ1_0', 37: 'TQ2_0', 38: 'MXFP4_MOE', 39: 'NVFP4', 40: 'Q1_0', 41: 'Q2_0' };
  for (const [n, name] of Object.entries(ft)) assert.equal(LLAMA_FILE_TYPES.get(Number(n)), name);
  assert.equal(fileTypeName(15 | 1024), 'Q4_K_M'); // llama.cpp's "guessed" bit
  assert.equal(fileTypeName(4), 'Q4_1_SOME_F16');
  assert.equal(fileTypeName(4, new Set([39, 0])), 'MXFP4'); // Ollama's gpt-oss files
  assert.equal(fileTypeName(999), undefined);
  assert.equal(guessedFileTypeName(12), 'Q4_K_M');
  assert.equal(guessedFileTypeName(11), 'Q3_K_M');
  assert.equal(guessedFileTypeName(15), 'Q8_K');
});

test('every value type round-trips, in versions 2 and 3; tensor infos and the data offset are read', async (t) => {
  const dir = await tempDir(t);
  const results: GgufHeader[] = [];
  for (const version of [2, 3]) {
    const p = join(dir, `v${version}.gguf`);
    const enc = await writeGguf(p, allTypesModel(version));
    const h = await readGgufHeader(p);
    assert.equal(h.version, version);
    assert.equal(h.path, p);
    assert.deepEqual([...h.metadata], allTypesMetadata());
    assert.equal(h.alignment, 32);
    assert.equal(h.dataOffset, enc.dataOffset);
    assert.equal(h.dataOffset % 32, 0);
    assert.ok(h.headerSize <= h.dataOffset && h.dataOffset - h.headerSize < 32);
    assert.equal(h.fileSize, enc.fileSize);
    assert.equal(h.tensorCount, 5);
    assert.deepEqual(
      h.tensors.map((x) => [x.name, x.dims, x.type, x.typeName, x.offset, x.elements, x.bytes]),
      [
        ['a', [32, 4], 8, 'Q8_0', 0, 128, 136],
        ['b', [256, 2, 3], 12, 'Q4_K', 160, 1536, 864],
        ['c', [7], 0, 'F32', 1024, 7, 28],
        ['scalar', [], 1, 'F16', 1056, 1, 2],
        ['mx', [64, 2], 39, 'MXFP4', 1088, 128, 68],
      ],
    );
    assert.deepEqual(h.tensors.map((x) => BigInt(x.offset)), enc.tensorOffsets);
    results.push(h);
  }
  // v2 and v3 differ only in the version number for little-endian files
  const strip = (h: GgufHeader) => ({ ...h, version: 0, path: '' });
  assert.deepEqual(strip(results[0]!), strip(results[1]!));
});

test('a small chunk size (refills everywhere, strings across chunk edges) reads the same header', async (t) => {
  const dir = await tempDir(t);
  const p = join(dir, 'm.gguf');
  await writeGguf(p, { ...sampleModel(), metadata: [...sampleModel().metadata!, ...allTypesMetadata().slice(1)] });
  const whole = await readGgufHeader(p);
  for (const chunkSize of [1, 3, 7, 64, 1000]) assert.deepEqual(await readGgufHeader(p, { chunkSize }), whole, `chunk ${chunkSize}`);
});

test('general.alignment sets the padding of the data section and of every tensor offset', async (t) => {
  const dir = await tempDir(t);
  const p = join(dir, 'a.gguf');
  const enc = await writeGguf(p, {
    metadata: [['general.alignment', kv.u32(256)]],
    tensors: [
      { name: 'x', dims: [3], type: 0 },
      { name: 'y', dims: [5], type: 0 },
    ],
  });
  const h = await readGgufHeader(p);
  assert.equal(h.alignment, 256);
  assert.equal(h.dataOffset, 256);
  assert.equal(enc.dataOffset, 256);
  assert.deepEqual(h.tensors.map((x) => x.offset), [0, 256]);
});

test('derived fields: architecture, name, parameters, quantization from general.file_type, context length', async (t) => {
  const dir = await tempDir(t);
  const cases: Array<[number, string]> = [
    [15, 'Q4_K_M'],
    [7, 'Q8_0'],
    [1, 'F16'],
    [32, 'BF16'],
    [0, 'F32'],
    [18, 'Q6_K'],
    [38, 'MXFP4_MOE'],
  ];
  for (const [fileType, quant] of cases) {
    const p = join(dir, `ft${fileType}.gguf`);
    await writeGguf(p, sampleModel({ fileType }));
    const d = describeGguf(await readGgufHeader(p));
    assert.equal(d.architecture, 'llama');
    assert.equal(d.name, 'Tiny Llama Test');
    // token_embd 256×300, 2 blocks of (2 norms 256, q/k/v/o 256×256, gate/up 256×512, down 512×256), output norm, output
    assert.equal(d.parameterCount, 2 * 256 * 300 + 2 * (2 * 256 + 4 * 65536 + 3 * 131072) + 256);
    assert.equal(d.parameterSize, '1.47M');
    assert.equal(d.fileType, fileType);
    assert.equal(d.quantization, quant);
    assert.equal(d.quantizationSource, 'file_type');
    assert.equal(d.contextLength, 4096);
    assert.equal(d.split, undefined);
  }
});

test('without general.file_type the quantization is the most common tensor type, as llama.cpp guesses it', async (t) => {
  const dir = await tempDir(t);
  const cases: Array<[{ weight: number; norm: number; output?: number }, string]> = [
    [{ weight: 12, norm: 0 }, 'Q4_K_M'], // 13 Q4_K, 5 F32, 3 Q6_K
    [{ weight: 11, norm: 0 }, 'Q3_K_M'],
    [{ weight: 8, norm: 0, output: 8 }, 'Q8_0'],
    [{ weight: 1, norm: 0, output: 1 }, 'F16'],
    [{ weight: 30, norm: 0, output: 30 }, 'BF16'],
    [{ weight: 0, norm: 0, output: 0 }, 'F32'],
    [{ weight: 39, norm: 0, output: 8 }, 'MXFP4_MOE'],
    [{ weight: 15, norm: 0, output: 15 }, 'Q8_K'], // no file type for it: the ggml type name
  ];
  for (const [types, quant] of cases) {
    const p = join(dir, `guess-${quant}.gguf`);
    await writeGguf(p, sampleModel({ fileType: null, types }));
    const d = describeGguf(await readGgufHeader(p));
    assert.equal(d.fileType, undefined);
    assert.equal(d.quantization, quant, JSON.stringify(types));
    assert.equal(d.quantizationSource, 'tensors');
  }
  // a file type llama.cpp does not define falls back to the tensors too, but is still reported
  const p = join(dir, 'unknown-ft.gguf');
  await writeGguf(p, sampleModel({ fileType: 999 }));
  const d = describeGguf(await readGgufHeader(p));
  assert.equal(d.fileType, 999);
  assert.equal(d.quantization, 'Q4_K_M');
  assert.equal(d.quantizationSource, 'tensors');
  // Ollama's MXFP4 files say 4
  const q = join(dir, 'ollama-mxfp4.gguf');
  await writeGguf(q, sampleModel({ fileType: 4, types: { weight: 39, norm: 0, output: 8 } }));
  assert.equal(describeGguf(await readGgufHeader(q)).quantization, 'MXFP4');
});

test('no tensors, no architecture: description is empty but valid; unknown tensor types are kept', async (t) => {
  const dir = await tempDir(t);
  const p = join(dir, 'empty.gguf');
  await writeGguf(p, {});
  const h = await readGgufHeader(p);
  assert.equal(h.tensorCount, 0);
  assert.equal(h.metadata.size, 0);
  const d = describeGguf(h);
  assert.deepEqual(d, { parameterCount: 0, parameterSize: '0', metadataSummary: {} });

  const q = join(dir, 'future.gguf');
  await writeGguf(q, { tensors: [{ name: 'w', dims: [100, 10], type: 77 }, { name: 'n', dims: [100], type: 0 }] }, { data: 'none' });
  const hq = await readGgufHeader(q, { checkDataBounds: false });
  assert.deepEqual(hq.tensors[0], { name: 'w', dims: [100, 10], type: 77, typeName: undefined, offset: 0, elements: 1000, bytes: undefined });
  const dq = describeGguf(hq);
  assert.equal(dq.parameterCount, 1100);
  assert.equal(dq.quantization, 'F32');
});

test('metadataSummary keeps short arrays, summarises long ones, and is canonical JSON', async (t) => {
  const dir = await tempDir(t);
  const p = join(dir, 'all.gguf');
  await writeGguf(p, allTypesModel(3));
  const d = describeGguf(await readGgufHeader(p));
  const s = d.metadataSummary;
  assert.equal(Object.keys(s).length, allTypesMetadata().length);
  assert.equal(s['t.u64'], '18446744073709551615');
  assert.equal(s['t.u64.small'], 42);
  assert.equal(s['t.i64'], '-9223372036854775808');
  assert.equal(s['t.f32.nan'], 'NaN');
  assert.equal(s['t.f32.inf'], '-Infinity');
  assert.equal(s['t.str'], 'héllo ✓ 日本語 🦙');
  assert.deepEqual(s['t.arr.u64'], [0, '18446744073709551615']);
  assert.deepEqual(s['t.arr.nested'], [[1, 2], ['x'], []]);
  assert.deepEqual(s['t.arr.deep'], [[[[7], [false]]]]);
  assert.deepEqual(s['t.arr.long'], { type: 'array', elementType: 'uint16', length: 100 });
  assert.deepEqual(describeGguf(await readGgufHeader(p), { maxArrayItems: 1000 }).metadataSummary['t.arr.long'], Array.from({ length: 100 }, (_, i) => i));
  assert.doesNotThrow(() => canonicalJson(s));

  const q = join(dir, 'model.gguf');
  await writeGguf(q, sampleModel());
  const dm = describeGguf(await readGgufHeader(q));
  assert.deepEqual(dm.metadataSummary['tokenizer.ggml.tokens'], { type: 'array', elementType: 'string', length: 300 });
  assert.equal(dm.metadataSummary['llama.context_length'], 4096);
  assert.doesNotThrow(() => canonicalJson(dm));
});

test('a key named __proto__ stays an ordinary metadata key', async (t) => {
  const dir = await tempDir(t);
  const p = join(dir, 'proto.gguf');
  await writeGguf(p, { metadata: [['__proto__', kv.str('x')], ['constructor', kv.u8(1)]] });
  const d = describeGguf(await readGgufHeader(p));
  assert.deepEqual(Object.keys(d.metadataSummary), ['__proto__', 'constructor']);
  assert.equal(Object.getPrototypeOf(d.metadataSummary), Object.prototype);
  assert.equal(canonicalJson(d.metadataSummary), '{"__proto__":"x","constructor":1}');
});

function shard(no: number, count: number, tensorsCount: number, names: string[], withMeta: boolean): GgufWriteSpec {
  const metadata: Array<[string, GgufKv]> = [];
  if (withMeta) metadata.push(['general.architecture', kv.str('qwen2')], ['general.name', kv.str('Sharded')], ['general.file_type', kv.u32(7)], ['qwen2.context_length', kv.u32(32768)]);
  metadata.push(['split.no', kv.u16(no)], ['split.count', kv.u16(count)], ['split.tensors.count', kv.i32(tensorsCount)]);
  return { metadata, tensors: names.map((name) => ({ name, dims: [1024, 1000], type: 8 })) };
}

test('sharded GGUF: split keys per file, and one description for the whole set', async (t) => {
  const dir = await tempDir(t);
  const p1 = join(dir, 'model-00001-of-00002.gguf');
  const p2 = join(dir, 'model-00002-of-00002.gguf');
  await writeGguf(p1, shard(0, 2, 3, ['a', 'b'], true));
  await writeGguf(p2, shard(1, 2, 3, ['c'], false));
  const h1 = await readGgufHeader(p1);
  const h2 = await readGgufHeader(p2);
  const d1 = describeGguf(h1);
  const d2 = describeGguf(h2);
  assert.deepEqual(d1.split, { no: 0, count: 2, tensorsCount: 3 });
  assert.deepEqual(d2.split, { no: 1, count: 2, tensorsCount: 3 });
  assert.equal(d1.parameterCount, 2_048_000);
  assert.equal(d2.architecture, undefined);
  assert.equal(d2.quantization, 'Q8_0');
  assert.equal(d2.quantizationSource, 'tensors');

  for (const order of [[h1, h2], [h2, h1]]) {
    const all = describeGgufShards(order);
    assert.equal(all.parameterCount, 3_072_000);
    assert.equal(all.parameterSize, '3.07M');
    assert.equal(all.architecture, 'qwen2');
    assert.equal(all.name, 'Sharded');
    assert.equal(all.quantization, 'Q8_0');
    assert.equal(all.quantizationSource, 'file_type');
    assert.equal(all.contextLength, 32768);
    assert.deepEqual(all.split, { no: 0, count: 2, tensorsCount: 3 });
  }
  assert.throws(() => describeGgufShards([h1]), (e: unknown) => e instanceof PackError && e.code === 'NOT_FOUND' && /shard 2 of 2 missing/.test(e.message));
  assert.throws(() => describeGgufShards([h1, h1]), (e: unknown) => e instanceof PackError && e.code === 'CORRUPT' && /also/.test(e.message));

  const p3 = join(dir, 'other.gguf');
  await writeGguf(p3, shard(1, 3, 3, ['c'], false));
  const h3 = await readGgufHeader(p3);
  assert.throws(() => describeGgufShards([h1, h3]), (e: unknown) => e instanceof PackError && e.code === 'CORRUPT' && /does not belong/.test(e.message));
  const p4 = join(dir, 'wrong-total.gguf');
  await writeGguf(p4, shard(1, 2, 3, ['c', 'd'], false));
  const h4 = await readGgufHeader(p4);
  assert.throws(() => describeGgufShards([h1, h4]), (e: unknown) => e instanceof PackError && e.code === 'CORRUPT' && /hold 4 tensors/.test(e.message));
  const plain = join(dir, 'plain.gguf');
  await writeGguf(plain, sampleModel());
  const hp = await readGgufHeader(plain);
  assert.deepEqual(describeGgufShards([hp]), describeGguf(hp));
  assert.throws(() => describeGgufShards([h1, hp]), (e: unknown) => e instanceof PackError && /not a GGUF shard/.test(e.message));
});

test('a lone shard claiming split.count 2^53 - 1: NOT_FOUND at once (the missing shards are counted, not listed one by one)', async (t) => {
  const p = join(await tempDir(t), 'huge-count.gguf');
  const spec = shard(0, 2, 1, ['a'], true);
  spec.metadata = [...spec.metadata!].map(([k, v]): [string, GgufKv] => [k, k === 'split.count' ? kv.u64(2n ** 53n - 1n) : v]);
  await writeGguf(p, spec);
  // In a child with a small heap: a loop over every shard number would exhaust it within a second
  // instead of running (and allocating) for ever in the test process.
  const script = `const { readGgufHeader } = await import(${JSON.stringify(new URL('./gguf.ts', import.meta.url).href)});
    const { describeGgufShards } = await import(${JSON.stringify(new URL('./gguf-describe.ts', import.meta.url).href)});
    try { describeGgufShards([await readGgufHeader(${JSON.stringify(p)})]); } catch (e) { console.log(e.code + ' ' + e.message); }`;
  const r = spawnSync(process.execPath, ['--max-old-space-size=128', '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr.slice(-500));
  assert.equal(r.stdout.trim(), `NOT_FOUND ${p}: shards 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, … of 9007199254740991 missing`);
});

test('a sparse 40 GB model reads its header only', async (t) => {
  const dir = await tempDir(t);
  const p = join(dir, 'big.gguf');
  const tensors = Array.from({ length: 10 }, (_, i) => ({ name: `blk.${i}.w`, dims: [32768, 32768], type: 0 }));
  await writeGguf(p, { metadata: [['general.architecture', kv.str('big')], ['general.file_type', kv.u32(0)]], tensors });
  const st = await stat(p);
  assert.ok(st.size > 40e9, `size ${st.size}`);
  const h = await readGgufHeader(p);
  assert.equal(h.fileSize, st.size);
  const d = describeGguf(h);
  assert.equal(d.parameterCount, 10 * 32768 * 32768);
  assert.equal(d.parameterSize, '10.7B');
  assert.equal(d.quantization, 'F32');
});

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

/** Compares our header with @huggingface/gguf's parse of the same file. */
async function crossCheck(p: string): Promise<void> {
  const ours = await readGgufHeader(p);
  const hf = await hfGguf(p, { allowLocalFile: true, typedMetadata: true, computeParametersCount: true });
  assert.equal(hf.littleEndian, true);
  const { version, tensor_count, kv_count, ...meta } = hf.metadata as unknown as Record<string, unknown>;
  assert.equal(version, ours.version);
  assert.equal(tensor_count, BigInt(ours.tensorCount));
  assert.equal(kv_count, BigInt(ours.metadata.size));
  assert.deepEqual(meta, Object.fromEntries([...ours.metadata].map(([k, v]) => [k, plainGgufValue(v.value)])), p);
  for (const [k, v] of ours.metadata) {
    const typed = (hf.typedMetadata as unknown as Record<string, { type: number; subType?: number }>)[k]!;
    assert.equal(typed.type, v.type, k);
    if (typeof v.value === 'object') assert.equal(typed.subType, v.value.elementType, k);
  }
  assert.deepEqual(
    hf.tensorInfos.map((x) => ({ name: x.name, dims: x.shape.map(Number), nDims: x.n_dims, type: x.dtype as number, offset: Number(x.offset) })),
    ours.tensors.map((x) => ({ name: x.name, dims: x.dims, nDims: x.dims.length, type: x.type, offset: x.offset })),
  );
  assert.equal(hf.tensorDataOffset, BigInt(ours.dataOffset));
  assert.equal(hf.parameterCount, describeGguf(ours).parameterCount);
}

test('cross-check: @huggingface/gguf reads the same metadata, types, tensor infos and data offset', async (t) => {
  const dir = await tempDir(t);
  const specs: Record<string, GgufWriteSpec> = {
    'all-v2': allTypesModel(2),
    'all-v3': allTypesModel(3),
    sample: sampleModel(),
    'no-file-type': sampleModel({ fileType: null, types: { weight: 8, norm: 0 } }),
    aligned: { metadata: [['general.alignment', kv.u32(4096)], ['general.architecture', kv.str('x')]], tensors: [{ name: 'w', dims: [64, 3], type: 2 }, { name: 'v', dims: [5], type: 28 }] },
    empty: {},
    'shard-1': shard(0, 2, 3, ['a', 'b'], true),
    'shard-2': shard(1, 2, 3, ['c'], false),
    big: { tensors: Array.from({ length: 10 }, (_, i) => ({ name: `w${i}`, dims: [32768, 32768], type: 30 })) },
  };
  for (const [name, spec] of Object.entries(specs)) {
    const p = join(dir, `${name}.gguf`);
    await writeGguf(p, spec);
    await crossCheck(p);
  }
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
