/** The GGUF reader on good files: every value type, derived fields, metadata summary, shards, the cross-check. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { gguf as hfGguf } from '@huggingface/gguf';
import { PackError } from '../errors.js';
import { canonicalJson } from '../oci/canonical-json.js';
import { tempDir } from '../test-support/tmp.js';
import { allTypesMetadata, arr, kv, sampleModel, writeGguf, type GgufWriteSpec } from '../test-support/gguf-writer.js';
import { GGML_TYPES, LLAMA_FILE_TYPES, fileTypeName, ggmlTypeId, guessedFileTypeName } from './gguf-types.js';
import { plainGgufValue, readGgufHeader, type GgufHeader, type GgufKv } from './gguf.js';
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
