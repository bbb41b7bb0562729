/**
 * Seeded mutation fuzzing of the GGUF reader: valid files with bytes flipped, counts and lengths set
 * to extremes, truncations, insertions and deletions. Every mutant must either parse (and then
 * describe, serialise, and agree with @huggingface/gguf where that parses it too) or fail with a
 * PackError naming the file; none may hang or allocate without bound.
 * MPK_FUZZ_SEED and MPK_FUZZ_ITERATIONS override the defaults; a failure prints the seed, the
 * iteration and its mutations, which reproduce it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { gguf as hfGguf } from '@huggingface/gguf';
import { PackError } from '../errors.js';
import { canonicalJson } from '../oci/canonical-json.js';
import { tempDir } from '../test-support/tmp.js';
import { allTypesMetadata, encodeGguf, kv, sampleModel, writeBytes, type EncodedGguf } from '../test-support/gguf-writer.js';
import { plainGgufValue, readGgufHeader, type GgufHeader, type ReadGgufOptions } from './gguf.js';
import { describeGguf } from './gguf-describe.js';

const SEED = Number(process.env.MPK_FUZZ_SEED ?? 0x6d706b);
const ITERATIONS = Number(process.env.MPK_FUZZ_ITERATIONS ?? 2000);
const PER_CASE_MS = 5000;
const MEMORY_BOUND = 256 * 1024 * 1024;

/** xorshift32: small, seeded, good enough to pick mutations. */
function rng(seed: number): { u32(): number; int(n: number): number; pick<T>(a: readonly T[]): T; u64(): bigint } {
  let x = seed >>> 0 || 1;
  const u32 = (): number => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  const int = (n: number): number => (n <= 0 ? 0 : u32() % n);
  return { u32, int, pick: (a) => a[int(a.length)]!, u64: () => (BigInt(u32()) << 32n) | BigInt(u32()) };
}

function corpus(): EncodedGguf[] {
  return [
    encodeGguf(sampleModel()),
    encodeGguf(sampleModel({ version: 2, fileType: null })),
    encodeGguf({
      version: 2,
      metadata: allTypesMetadata(),
      tensors: [
        { name: 'a', dims: [32, 4], type: 8 },
        { name: 'b', dims: [256, 2, 3], type: 12 },
        { name: 'c', dims: [7], type: 0 },
        { name: 'future', dims: [5, 5], type: 77 },
      ],
    }),
    encodeGguf({
      metadata: [
        ['general.alignment', kv.u32(64)],
        ['split.no', kv.u16(1)],
        ['split.count', kv.u16(3)],
        ['split.tensors.count', kv.i32(9)],
      ],
      tensors: [{ name: 'x', dims: [64, 64], type: 39 }],
    }),
    encodeGguf({}),
  ];
}

interface Mutant {
  bytes: Buffer;
  size: number;
  steps: string[];
}

const EXTREMES = [0n, 1n, 0x7fffffffn, 0xffffffffn, 1n << 32n, 1n << 53n, 1n << 60n, 1n << 63n, (1n << 64n) - 1n];

function mutate(base: EncodedGguf, r: ReturnType<typeof rng>): Mutant {
  let bytes = Buffer.from(base.header);
  let truncated = false;
  const steps: string[] = [];
  const n = 1 + r.int(3);
  for (let k = 0; k < n && bytes.length > 0; k++) {
    const kind = r.int(8);
    const i = r.int(bytes.length);
    if (kind <= 1) {
      const bit = r.int(8);
      bytes[i]! ^= 1 << bit;
      steps.push(`flip ${i}.${bit}`);
    } else if (kind === 2) {
      const v = r.int(256);
      bytes[i] = v;
      steps.push(`set ${i}=${v}`);
    } else if (kind <= 4 && base.fields.length > 0) {
      // a length or count set to something extreme, or just off by a little
      const f = r.pick(base.fields);
      if (f.at + f.size > bytes.length) continue;
      const old = f.size === 8 ? bytes.readBigUInt64LE(f.at) : BigInt(bytes.readUInt32LE(f.at));
      const choice = r.int(4);
      let v = choice === 0 ? r.pick(EXTREMES) : choice === 1 ? r.u64() : old + BigInt(r.int(5)) - 2n;
      v = f.size === 8 ? BigInt.asUintN(64, v) : BigInt.asUintN(32, v);
      if (f.size === 8) bytes.writeBigUInt64LE(v, f.at);
      else bytes.writeUInt32LE(Number(v), f.at);
      steps.push(`${f.what} (@${f.at}) = ${v}`);
    } else if (kind === 5) {
      bytes = bytes.subarray(0, i);
      truncated = true;
      steps.push(`truncate ${i}`);
    } else if (kind === 6) {
      const len = 1 + r.int(16);
      const ins = Buffer.from(Array.from({ length: len }, () => r.int(256)));
      bytes = Buffer.concat([bytes.subarray(0, i), ins, bytes.subarray(i)]);
      steps.push(`insert ${len} at ${i}`);
    } else {
      const len = 1 + r.int(16);
      bytes = Buffer.concat([bytes.subarray(0, i), bytes.subarray(i + len)]);
      steps.push(`delete ${len} at ${i}`);
    }
  }
  // the tensor data stays a hole after the header unless the file was cut
  return { bytes, size: truncated ? bytes.length : bytes.length + base.dataSize, steps };
}

function options(r: ReturnType<typeof rng>): ReadGgufOptions {
  const x = r.int(10);
  if (x < 2) return { chunkSize: 1 + r.int(64) };
  if (x === 2) {
    return { maxHeaderBytes: 64 + r.int(20000), maxStringBytes: r.int(64), maxArrayElements: r.int(1000), maxTensors: r.int(30), maxKeys: r.int(60), maxArrayDepth: r.int(5) };
  }
  return {};
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer after ${ms} ms (a hang)`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

function checkHeader(h: GgufHeader, size: number): void {
  assert.equal(h.tensors.length, h.tensorCount);
  assert.equal(h.fileSize, size);
  assert.ok(h.headerSize <= size);
  assert.ok(h.dataOffset >= h.headerSize && h.dataOffset - h.headerSize < h.alignment);
  assert.equal(h.dataOffset % h.alignment, 0);
  for (const t of h.tensors) {
    assert.ok(t.dims.length <= 8);
    if (t.bytes !== undefined) assert.ok(h.dataOffset + t.offset + t.bytes <= size, t.name);
  }
  const d = describeGguf(h);
  assert.ok(Number.isFinite(d.parameterCount) && d.parameterCount >= 0);
  canonicalJson(d);
}

async function agreesWithReference(p: string, h: GgufHeader): Promise<boolean> {
  let hf;
  try {
    hf = await hfGguf(p, { allowLocalFile: true });
  } catch {
    return false; // the reference refused it (its own limits): nothing to compare
  }
  const { version, tensor_count, kv_count, ...meta } = hf.metadata as unknown as Record<string, unknown>;
  assert.equal(version, h.version);
  assert.equal(tensor_count, BigInt(h.tensorCount));
  assert.equal(kv_count, BigInt(h.metadata.size));
  assert.deepEqual(meta, Object.fromEntries([...h.metadata].map(([k, v]) => [k, plainGgufValue(v.value)])));
  assert.deepEqual(
    hf.tensorInfos.map((t) => [t.name, t.shape.map(Number), t.dtype as number, Number(t.offset)]),
    h.tensors.map((t) => [t.name, t.dims, t.type, t.offset]),
  );
  assert.equal(hf.tensorDataOffset, BigInt(h.dataOffset));
  return true;
}

test(`fuzz: ${ITERATIONS} seeded mutations of valid GGUF files parse or fail with a PackError (seed ${SEED})`, async (t) => {
  const dir = await tempDir(t);
  const p = join(dir, 'fuzz.gguf');
  const bases = corpus();
  const r = rng(SEED);
  const outcomes = new Map<string, number>();
  const count = (k: string): void => void outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
  const mem = (): number => {
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  const baseline = mem();
  let peak = 0;
  let slowest = 0;
  const started = performance.now();
  for (let it = 0; it < ITERATIONS; it++) {
    const m = mutate(r.pick(bases), r);
    const opts = options(r);
    await writeBytes(p, m.bytes, m.size);
    const where = `seed ${SEED} iteration ${it}: ${m.steps.join('; ')} with ${JSON.stringify(opts)}`;
    const t0 = performance.now();
    let h: GgufHeader | undefined;
    try {
      h = await withTimeout(readGgufHeader(p, opts), PER_CASE_MS, where);
    } catch (e) {
      if (!(e instanceof PackError)) assert.fail(`${where}: not a PackError: ${(e as Error)?.stack ?? String(e)}`);
      assert.ok(['CORRUPT', 'UNSUPPORTED', 'SIZE_EXCEEDS_LIMIT'].includes(e.code), `${where}: ${e.code} ${e.message}`);
      assert.ok(e.message.startsWith(`${p}: `), `${where}: ${e.message}`);
      assert.ok(e.hint, `${where}: no hint for ${e.message}`);
      count(e.code);
    }
    slowest = Math.max(slowest, performance.now() - t0);
    if (h) {
      try {
        checkHeader(h, m.size);
        count(Object.keys(opts).length === 0 && (await agreesWithReference(p, h)) ? 'parsed, agrees with @huggingface/gguf' : 'parsed');
      } catch (e) {
        assert.fail(`${where}: ${(e as Error)?.stack ?? String(e)}`);
      }
    }
    peak = Math.max(peak, mem() - baseline);
  }
  const elapsed = performance.now() - started;
  t.diagnostic(`${ITERATIONS} mutants in ${elapsed.toFixed(0)} ms (slowest ${slowest.toFixed(1)} ms, memory peak +${(peak / 1048576).toFixed(1)} MiB): ${JSON.stringify(Object.fromEntries(outcomes))}`);
  assert.ok(peak < MEMORY_BOUND, `memory grew by ${peak} bytes`);
  // every kind of outcome happens, so the mutations reach past the first bytes
  assert.ok((outcomes.get('CORRUPT') ?? 0) > ITERATIONS / 10, JSON.stringify(Object.fromEntries(outcomes)));
  if (ITERATIONS >= 1000) {
    assert.ok((outcomes.get('parsed, agrees with @huggingface/gguf') ?? 0) > 20, JSON.stringify(Object.fromEntries(outcomes)));
    assert.ok((outcomes.get('SIZE_EXCEEDS_LIMIT') ?? 0) > 0 && (outcomes.get('UNSUPPORTED') ?? 0) > 0, JSON.stringify(Object.fromEntries(outcomes)));
  }
});
