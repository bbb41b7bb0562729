/**
 * Test helpers: safetensors files written the way huggingface/safetensors writes them (8-byte
 * little-endian length, JSON header padded with spaces to a multiple of 8, tensors back to back),
 * sharded sets with a `model.safetensors.index.json`, and deliberately broken files.
 */
import { open, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

export interface TensorSpec {
  /** A safetensors dtype name; bits per element from the table below. */
  dtype: string;
  shape: number[];
}

/** name → tensor, in the order they go into the data section. */
export type TensorSpecs = Record<string, TensorSpec>;

/** Bits per element, kept here apart from the reader's table so that a mistake in one shows. */
const BITS: Record<string, number> = {
  BOOL: 8, F4: 4, F6_E2M3: 6, F6_E3M2: 6, U8: 8, I8: 8, F8_E5M2: 8, F8_E4M3: 8, F8_E8M0: 8,
  F8_E4M3FNUZ: 8, F8_E5M2FNUZ: 8, I16: 16, U16: 16, F16: 16, BF16: 16, I32: 32, U32: 32, F32: 32,
  C64: 64, F64: 64, I64: 64, U64: 64,
};

export interface WriteOptions {
  metadata?: Record<string, string>;
  /** 'zero' writes zeros, 'sparse' leaves a hole (a 14 GB model costs no disk), 'pattern' writes varied bytes. */
  data?: 'zero' | 'sparse' | 'pattern';
}

export interface PlannedTensor {
  name: string;
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

export interface SafetensorsLayout {
  /** The JSON header's length N (after padding). */
  headerBytes: number;
  dataOffset: number;
  dataSize: number;
  fileSize: number;
  tensors: PlannedTensor[];
  /** The first 8 + N bytes of the file. */
  head: Buffer;
}

/** Byte size of a tensor; throws when the dtype is unknown or the bits do not fill whole bytes. */
export function tensorByteSize(spec: TensorSpec): number {
  const bits = BITS[spec.dtype];
  if (bits === undefined) throw new Error(`test writer: unknown dtype ${spec.dtype}`);
  const total = spec.shape.reduce((a, b) => a * b, 1) * bits;
  if (total % 8 !== 0) throw new Error(`test writer: ${spec.dtype} ${JSON.stringify(spec.shape)} is not a whole number of bytes`);
  return total / 8;
}

/** Lays the tensors out back to back and encodes the header. */
export function planSafetensors(tensors: TensorSpecs, opts: WriteOptions = {}): SafetensorsLayout {
  const planned: PlannedTensor[] = [];
  const header: Record<string, unknown> = {};
  if (opts.metadata) header.__metadata__ = opts.metadata;
  let offset = 0;
  for (const [name, spec] of Object.entries(tensors)) {
    const size = tensorByteSize(spec);
    planned.push({ name, dtype: spec.dtype, shape: [...spec.shape], begin: offset, end: offset + size });
    offset += size;
  }
  // Integer-like names come first in a JS object's key order; the header is a map, order is free.
  for (const t of planned) header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [t.begin, t.end] };
  const head = encodeHead(JSON.stringify(header));
  const headerBytes = head.length - 8;
  return { headerBytes, dataOffset: head.length, dataSize: offset, fileSize: head.length + offset, tensors: planned, head };
}

/** `u64le(N) + json` with the JSON padded by spaces to a multiple of 8 bytes, as the reference writer does. */
export function encodeHead(json: string, pad = true): Buffer {
  let body = Buffer.from(json, 'utf8');
  if (pad && body.length % 8 !== 0) body = Buffer.concat([body, Buffer.alloc(8 - (body.length % 8), 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(body.length));
  return Buffer.concat([len, body]);
}

function fill(buf: Buffer, from: number): Buffer {
  for (let i = 0; i < buf.length; i++) buf[i] = ((from + i) * 31 + 7) & 0xff;
  return buf;
}

/** The whole file in memory (for small files and fuzzing). */
export function safetensorsBytes(tensors: TensorSpecs, opts: WriteOptions = {}): Buffer {
  const plan = planSafetensors(tensors, opts);
  const data = Buffer.alloc(plan.dataSize);
  if (opts.data === 'pattern') fill(data, 0);
  return Buffer.concat([plan.head, data]);
}

/** Writes a valid safetensors file. */
export async function writeSafetensors(path: string, tensors: TensorSpecs, opts: WriteOptions = {}): Promise<SafetensorsLayout> {
  const plan = planSafetensors(tensors, opts);
  await writeWithData(path, plan.head, plan.dataSize, opts.data ?? 'zero');
  return plan;
}

async function writeWithData(path: string, head: Buffer, dataSize: number, data: 'zero' | 'sparse' | 'pattern'): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const fh = await open(path, 'w');
  try {
    await fh.write(head, 0, head.length, 0);
    if (data === 'sparse') {
      await fh.truncate(head.length + dataSize);
      return;
    }
    const chunk = 1 << 20;
    for (let off = 0; off < dataSize; off += chunk) {
      const n = Math.min(chunk, dataSize - off);
      const buf = Buffer.alloc(n);
      if (data === 'pattern') fill(buf, off);
      await fh.write(buf, 0, n, head.length + off);
    }
  } finally {
    await fh.close();
  }
}

export interface ShardedOptions extends WriteOptions {
  /** The index's file name; default model.safetensors.index.json. */
  indexName?: string;
  /** metadata.total_size: the real sum by default, a number to lie, null to leave it out. */
  totalSize?: number | null;
  /** Replaces or adds weight_map entries (tensor → file) after the real ones are made. */
  weightMap?: Record<string, string>;
  /** Removes these tensors from weight_map. */
  omitFromIndex?: string[];
}

export interface ShardedModel {
  indexPath: string;
  /** Shard paths, in the order given. */
  files: string[];
  /** The real sum of tensor bytes. */
  totalSize: number;
  layouts: SafetensorsLayout[];
}

/** Writes shards (file name → tensors) under dir and an index mapping each tensor to its shard. */
export async function writeShardedSafetensors(
  dir: string,
  shards: Record<string, TensorSpecs>,
  opts: ShardedOptions = {},
): Promise<ShardedModel> {
  const weightMap: Record<string, string> = {};
  const files: string[] = [];
  const layouts: SafetensorsLayout[] = [];
  let totalSize = 0;
  for (const [file, tensors] of Object.entries(shards)) {
    const path = join(dir, file);
    const layout = await writeSafetensors(path, tensors, opts);
    files.push(path);
    layouts.push(layout);
    totalSize += layout.dataSize;
    for (const name of Object.keys(tensors)) weightMap[name] = file;
  }
  for (const name of opts.omitFromIndex ?? []) delete weightMap[name];
  Object.assign(weightMap, opts.weightMap ?? {});
  const index: Record<string, unknown> = { weight_map: weightMap };
  if (opts.totalSize !== null) index.metadata = { total_size: opts.totalSize ?? totalSize };
  const indexPath = join(dir, opts.indexName ?? 'model.safetensors.index.json');
  await writeFile(indexPath, JSON.stringify(index, null, 2) + '\n');
  return { indexPath, files, totalSize, layouts };
}

export interface RawOptions {
  /** The header text as it goes into the file (an object is JSON-encoded). */
  header: string | object;
  /** Pad the header with spaces to a multiple of 8 (default true). */
  pad?: boolean;
  /** Overrides the 8-byte length prefix (the real length when absent). */
  headerLength?: number | bigint;
  /** Bytes after the header: the data section (zeros unless sparse). */
  dataSize?: number;
  data?: 'zero' | 'sparse' | 'pattern';
}

/** Writes whatever header and data section a test asks for, valid or not. */
export async function writeRawSafetensors(path: string, opts: RawOptions): Promise<void> {
  const text = typeof opts.header === 'string' ? opts.header : JSON.stringify(opts.header);
  const head = encodeHead(text, opts.pad ?? true);
  if (opts.headerLength !== undefined) head.writeBigUInt64LE(BigInt(opts.headerLength), 0);
  await writeWithData(path, head, opts.dataSize ?? 0, opts.data ?? 'zero');
}

// Fuzzing ----------------------------------------------------------------------------------------

/** mulberry32: a tiny seeded PRNG (32-bit state), so that every fuzz case replays from its seed. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface MutateOptions {
  /** Most edits land before this offset (the header); default the whole input. */
  hotEnd?: number;
  /** Bytes 0-7 are a safetensors length: also try rewriting it. */
  lengthPrefix?: boolean;
}

const INTERESTING = Buffer.from('{}[]",:0123456789-.eE \u0000\u00ff\\/', 'latin1');
const LENGTHS = [0n, 1n, 2n, 7n, 8n, 100_000_000n, 100_000_001n, 1n << 32n, 1n << 40n, 1n << 63n, (1n << 64n) - 1n];

/** One to three random edits of `base`: bit flips, interesting bytes, truncation, splices, length rewrites. */
export function mutate(base: Buffer, rand: () => number, opts: MutateOptions = {}): { bytes: Buffer; ops: string[] } {
  let b = Buffer.from(base);
  const ops: string[] = [];
  const int = (n: number) => Math.floor(rand() * n);
  const spot = () => (b.length === 0 ? 0 : rand() < 0.8 && opts.hotEnd ? int(Math.min(opts.hotEnd, b.length)) : int(b.length));
  const count = 1 + int(3);
  for (let k = 0; k < count; k++) {
    const op = int(opts.lengthPrefix ? 8 : 7);
    if (op === 0 && b.length > 0) {
      const i = spot();
      const bit = int(8);
      b[i] = b[i]! ^ (1 << bit);
      ops.push(`flip ${i}.${bit}`);
    } else if (op === 1 && b.length > 0) {
      const i = spot();
      b[i] = INTERESTING[int(INTERESTING.length)]!;
      ops.push(`set ${i}=${b[i]}`);
    } else if (op === 2) {
      const n = int(b.length + 1);
      b = b.subarray(0, n);
      ops.push(`truncate ${n}`);
    } else if (op === 3 && b.length > 0) {
      const i = spot();
      const n = 1 + int(Math.min(16, b.length - i));
      b = Buffer.concat([b.subarray(0, i), b.subarray(i + n)]);
      ops.push(`delete ${i}+${n}`);
    } else if (op === 4 && b.length > 0) {
      const i = spot();
      const n = 1 + int(Math.min(32, b.length - i));
      b = Buffer.concat([b.subarray(0, i + n), b.subarray(i, i + n), b.subarray(i + n)]);
      ops.push(`duplicate ${i}+${n}`);
    } else if (op === 5) {
      const i = spot();
      const extra = Buffer.from(Array.from({ length: 1 + int(8) }, () => int(256)));
      b = Buffer.concat([b.subarray(0, i), extra, b.subarray(i)]);
      ops.push(`insert ${i}+${extra.length}`);
    } else if (op === 6) {
      const extra = Buffer.from(Array.from({ length: 1 + int(64) }, () => int(256)));
      b = Buffer.concat([b, extra]);
      ops.push(`append ${extra.length}`);
    } else if (op === 7 && b.length >= 8) {
      const cur = b.readBigUInt64LE(0);
      const choices = [...LENGTHS, cur - 1n, cur + 1n, cur + 8n, BigInt(b.length - 8), BigInt(b.length - 7), BigInt(int(2 ** 32))];
      let v = choices[int(choices.length)]!;
      if (v < 0n) v = 0n;
      b = Buffer.from(b);
      b.writeBigUInt64LE(v & ((1n << 64n) - 1n), 0);
      ops.push(`length ${v}`);
    }
  }
  return { bytes: b, ops };
}

/** One file rewritten in place for each fuzz case (much cheaper than creating it again). */
export async function scratchFile(path: string): Promise<{ set(bytes: Uint8Array): Promise<void>; close(): Promise<void> }> {
  const fh = await open(path, 'w');
  return {
    async set(bytes) {
      // Overwrite, then cut: truncating to 0 first frees the blocks, which is slow on some disks.
      await fh.write(bytes, 0, bytes.length, 0);
      await fh.truncate(bytes.length);
    },
    close: () => fh.close(),
  };
}

/** Mixed dtypes (sub-byte, BOOL, an empty tensor, a scalar): the tests' usual small header. */
export const MIXED_TENSORS: TensorSpecs = {
  'model.embed_tokens.weight': { dtype: 'BF16', shape: [32, 8] },
  'model.norm.weight': { dtype: 'F32', shape: [8] },
  'lm_head.weight': { dtype: 'BF16', shape: [32, 8] },
  'packed.f4': { dtype: 'F4', shape: [6] },
  'packed.f6': { dtype: 'F6_E2M3', shape: [4] },
  'mask': { dtype: 'BOOL', shape: [3] },
  'empty': { dtype: 'F16', shape: [0, 5] },
  'scalar': { dtype: 'I64', shape: [] },
};
