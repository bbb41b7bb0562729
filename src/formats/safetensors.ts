/**
 * Safetensors: the header of one file (checked the way huggingface/safetensors checks it, without
 * reading the tensor data), what a set of headers says about the model (parameter count, dtypes,
 * precision, quantization), and sharded models through `model.safetensors.index.json`.
 *
 * A file is `u64 little-endian N`, then N bytes of UTF-8 JSON, then the data section. The JSON
 * maps tensor names to `{dtype, shape, data_offsets: [begin, end]}` (offsets relative to the data
 * section) plus an optional `__metadata__` string → string map. Everything read from the file is
 * untrusted: sizes are checked before anything is allocated, and every failure is a PackError.
 */
import { constants, type Stats } from 'node:fs';
import { open, readdir, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { PackError, fsError } from '../errors.js';
import { safeRelativePath } from '../internal/safe-path.js';
import { mapBounded } from '../internal/map-bounded.js';
import { formatParamCount } from './param-size.js';

/** The reference implementation's limit (`MAX_HEADER_SIZE` in huggingface/safetensors): 100,000,000 bytes. */
export const SAFETENSORS_MAX_HEADER_BYTES = 100_000_000;
/** The largest `model.safetensors.index.json` read (real ones are well under 1 MiB). */
export const SAFETENSORS_MAX_INDEX_BYTES = 64 * 1024 * 1024;
/** The conventional name of a sharded model's index. */
export const SAFETENSORS_INDEX_NAME = 'model.safetensors.index.json';

/** Bits per element of every dtype huggingface/safetensors knows (0.6: sub-byte F4 and F6 included). */
export const SAFETENSORS_DTYPE_BITS = {
  BOOL: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  F8_E4M3FNUZ: 8,
  F8_E5M2FNUZ: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  C64: 64,
  F64: 64,
  I64: 64,
  U64: 64,
} as const;

export type SafetensorsDtype = keyof typeof SAFETENSORS_DTYPE_BITS;

/**
 * ModelPack `config.precision` words for each dtype. model-spec's config.md documents the PyTorch
 * dtype names (`float32`, `float16`, `bfloat16`, `float8_e4m3`, `float8_e5m2`, `int8`, `uint8`,
 * `bool`, `complex64`, …), and modctl fills PRECISION with config.json's `torch_dtype` verbatim, which
 * gives the same words (`bfloat16`). Dtypes the spec does not list follow the same pattern.
 */
export const SAFETENSORS_DTYPE_PRECISION: Readonly<Record<SafetensorsDtype, string>> = {
  BOOL: 'bool',
  F4: 'float4_e2m1',
  F6_E2M3: 'float6_e2m3',
  F6_E3M2: 'float6_e3m2',
  U8: 'uint8',
  I8: 'int8',
  F8_E5M2: 'float8_e5m2',
  F8_E4M3: 'float8_e4m3',
  F8_E8M0: 'float8_e8m0',
  F8_E4M3FNUZ: 'float8_e4m3fnuz',
  F8_E5M2FNUZ: 'float8_e5m2fnuz',
  I16: 'int16',
  U16: 'uint16',
  F16: 'float16',
  BF16: 'bfloat16',
  I32: 'int32',
  U32: 'uint32',
  F32: 'float32',
  C64: 'complex64',
  F64: 'float64',
  I64: 'int64',
  U64: 'uint64',
};

export function isSafetensorsDtype(s: unknown): s is SafetensorsDtype {
  return typeof s === 'string' && Object.hasOwn(SAFETENSORS_DTYPE_BITS, s);
}

export interface SafetensorsTensor {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Offsets in the data section (add `dataOffset` for the file offset); `end - begin` bytes. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  path: string;
  fileSize: number;
  /** N: the length of the JSON header (padding included). */
  headerBytes: number;
  /** Where the data section starts in the file: 8 + N. */
  dataOffset: number;
  /** `__metadata__`, when the header has one. */
  metadata: Record<string, string> | undefined;
  /** In data order (by `begin`): the order of the bytes in the file. */
  tensors: SafetensorsTensor[];
}

const CORRUPT_HINT = 'the file is truncated, damaged or not a safetensors file: download or export it again';

function corrupt(path: string, why: string, cause?: unknown): PackError {
  return new PackError('CORRUPT', `${path}: not a valid safetensors file: ${why}`, { cause, hint: CORRUPT_HINT });
}

/** A name from the file, quoted and cut short for messages. */
export function quoteName(s: string, max = 120): string {
  const q = JSON.stringify(s);
  return q.length <= max ? q : `${q.slice(0, max - 4)}…"`;
}

/** Opens a regular file for reading without blocking on FIFOs or devices; returns the handle and its size. */
export async function openRegularFile(path: string): Promise<{ fh: FileHandle; st: Stats }> {
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw fsError(e, path);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) {
      throw new PackError('IO', `${path}: not a regular file`, { hint: 'give a model file' });
    }
    return { fh, st };
  } catch (e) {
    await fh.close().catch(() => {});
    throw fsError(e, path);
  }
}

/** Reads up to `length` bytes at `position`; fewer only at the end of the file. */
export async function readAt(fh: FileHandle, path: string, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let filled = 0;
  try {
    while (filled < length) {
      const { bytesRead } = await fh.read(buf, filled, length - filled, position + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
  } catch (e) {
    throw fsError(e, path);
  }
  return filled === length ? buf : buf.subarray(0, filled);
}

/**
 * Reads and checks the header of one safetensors file. The data section is never read, but its
 * extent is checked: every tensor's bytes lie in it, match dtype × shape, and together cover it
 * exactly, without overlaps or holes, to the end of the file (as the reference implementation
 * requires). CORRUPT for a malformed file, SIZE_EXCEEDS_LIMIT for a header over 100,000,000 bytes.
 */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader> {
  const { fh, st } = await openRegularFile(path);
  try {
    const fileSize = st.size;
    if (fileSize < 8) throw corrupt(path, `the file is ${fileSize} bytes, shorter than the 8-byte header length`);
    const prefix = await readAt(fh, path, 0, 8);
    if (prefix.length < 8) throw corrupt(path, 'the file ended while reading the header length');
    const n = prefix.readBigUInt64LE(0);
    if (n + 8n > BigInt(fileSize)) {
      throw corrupt(path, `header length ${describeLength(n)} exceeds the file size (${fileSize} bytes)`);
    }
    if (n > BigInt(SAFETENSORS_MAX_HEADER_BYTES)) {
      throw new PackError(
        'SIZE_EXCEEDS_LIMIT',
        `${path}: safetensors header of ${n} bytes exceeds the ${SAFETENSORS_MAX_HEADER_BYTES.toLocaleString('en-US')}-byte limit`,
        { hint: 'real headers are a few MB at most, and safetensors itself refuses this file: download or export it again' },
      );
    }
    const headerBytes = Number(n);
    if (headerBytes < 2) throw corrupt(path, `header length ${headerBytes} is too short for a JSON object`);
    const raw = await readAt(fh, path, 8, headerBytes);
    if (raw.length < headerBytes) throw corrupt(path, 'the file ended inside the header (was it changed while being read?)');
    return parseSafetensorsHeader(path, raw, fileSize);
  } finally {
    await fh.close().catch(() => {});
  }
}

function describeLength(n: bigint): string {
  if (n >= 1n << 32n && (n & (n - 1n)) === 0n) return `2^${n.toString(2).length - 1}`;
  return n.toString();
}

/**
 * Checks a header already read: `raw` is the N JSON bytes, `fileSize` the size of the whole file.
 * Exported for callers holding the bytes in memory (a registry blob's first bytes, say).
 */
export function parseSafetensorsHeader(path: string, raw: Uint8Array, fileSize: number): SafetensorsHeader {
  const headerBytes = raw.length;
  const dataOffset = 8 + headerBytes;
  const dataSize = fileSize - dataOffset;
  if (dataSize < 0) throw corrupt(path, `header length ${headerBytes} exceeds the file size (${fileSize} bytes)`);
  if (raw[0] !== 0x7b) throw corrupt(path, 'the header does not start with "{"');
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch (e) {
    throw corrupt(path, 'the header is not valid UTF-8', e);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw corrupt(path, `the header is not valid JSON (${(e as Error).message})`, e);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw corrupt(path, 'the header is not a JSON object');

  let metadata: Record<string, string> | undefined;
  const tensors: SafetensorsTensor[] = [];
  for (const [name, value] of Object.entries(json)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(path, value);
      continue;
    }
    tensors.push(parseTensor(path, name, value, dataSize));
  }

  // The tensors must tile the data section: sorted by offset, each starts where the last ended,
  // and the last ends at the end of the file.
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev: SafetensorsTensor | undefined;
  for (const t of tensors) {
    if (t.begin < pos) {
      throw corrupt(path, `tensor ${quoteName(t.name)} [${t.begin}, ${t.end}) overlaps tensor ${quoteName(prev!.name)} [${prev!.begin}, ${prev!.end})`);
    }
    if (t.begin > pos) {
      throw corrupt(path, `${t.begin - pos} bytes of the data section before tensor ${quoteName(t.name)} (offsets ${pos} to ${t.begin}) belong to no tensor`);
    }
    pos = t.end;
    prev = t;
  }
  if (pos !== dataSize) {
    throw corrupt(path, `the last ${dataSize - pos} bytes of the data section (after offset ${pos}) belong to no tensor`);
  }
  return { path, fileSize, headerBytes, dataOffset, metadata, tensors };
}

function parseMetadata(path: string, value: unknown): Record<string, string> | undefined {
  if (value === null) return undefined; // the reference implementation reads it as an Option
  if (typeof value !== 'object' || Array.isArray(value)) throw corrupt(path, '__metadata__ is not a JSON object');
  const entries = Object.entries(value as Record<string, unknown>);
  for (const [k, v] of entries) {
    if (typeof v !== 'string') throw corrupt(path, `__metadata__ ${quoteName(k)} is not a string`);
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

function parseTensor(path: string, name: string, value: unknown, dataSize: number): SafetensorsTensor {
  const what = `tensor ${quoteName(name)}`;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw corrupt(path, `${what} is not a JSON object`);
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  if (!isSafetensorsDtype(dtype)) {
    throw corrupt(path, `${what} has dtype ${typeof dtype === 'string' ? quoteName(dtype, 40) : String(dtype)}, which is not a safetensors dtype`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw corrupt(path, `${what} has a shape that is not a list of non-negative integers`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
    throw corrupt(path, `${what} has data_offsets that are not [begin, end] with non-negative integers`);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) throw corrupt(path, `${what} has data_offsets [${begin}, ${end}] that end before they begin`);
  if (end > dataSize) {
    throw corrupt(path, `${what} ends at data offset ${end}, past the end of the ${dataSize}-byte data section (truncated file?)`);
  }
  const bits = SAFETENSORS_DTYPE_BITS[dtype];
  const elements = elementCount(shape as number[]);
  const want = elements === undefined ? undefined : (elements * bits) / 8;
  if (want !== end - begin) {
    const dims = `[${(shape as number[]).slice(0, 8).join(', ')}${shape.length > 8 ? ', …' : ''}]`;
    const needs =
      want === undefined ? 'more than 2^53 elements' : Number.isInteger(want) ? String(want) : `${want} (not a whole number of bytes)`;
    throw corrupt(path, `${what} holds ${end - begin} bytes, but ${dtype} ${dims} needs ${needs}`);
  }
  return { name, dtype, shape: shape as number[], begin, end };
}

/** The product of the dims, exact; undefined past 2^53 (no file holds that many bytes of data). */
function elementCount(shape: readonly number[]): number | undefined {
  if (shape.includes(0)) return 0;
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (n > Number.MAX_SAFE_INTEGER) return undefined;
  }
  return n;
}

// ------------------------------------------------------------------------------------------------
// What the headers say about the model

export interface SafetensorsDescription {
  tensorCount: number;
  /** Elements over every tensor (Hugging Face's "safetensors parameters" total). */
  parameterCount: number;
  /** `parameterCount` as ModelPack's paramSize (`494M`, `7.24B`). */
  parameterSize: string;
  /** Bytes of tensor data (what an index's `metadata.total_size` counts). */
  tensorBytes: number;
  /** dtype → element count, largest first. */
  dtypes: Partial<Record<SafetensorsDtype, number>>;
  /**
   * The ModelPack precision word of the dtype holding most elements, leaving out packed quantized
   * data (GPTQ/AWQ `qweight`, bitsandbytes 4-bit blobs, MXFP4 blocks), whose container dtype is not
   * a precision. Absent when there are no such tensors.
   */
  precision?: string;
  /** A quantization scheme the header shows: by `__metadata__` or by tensor naming conventions. */
  quantization?: string;
}

/** Sums what one or more headers (the shards of one model) say. */
export function describeSafetensors(headers: readonly SafetensorsHeader[]): SafetensorsDescription {
  const all: SafetensorsTensor[] = headers.flatMap((h) => h.tensors);
  const counts = new Map<SafetensorsDtype, number>();
  let parameterCount = 0;
  let tensorBytes = 0;
  for (const t of all) {
    const n = ((t.end - t.begin) * 8) / SAFETENSORS_DTYPE_BITS[t.dtype];
    counts.set(t.dtype, (counts.get(t.dtype) ?? 0) + n);
    parameterCount += n;
    tensorBytes += t.end - t.begin;
  }
  const byCount = (a: [string, number], b: [string, number]) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1);
  const dtypes = Object.fromEntries([...counts].sort(byCount)) as Partial<Record<SafetensorsDtype, number>>;

  const quant = detectQuantization(headers, all);
  const votes = new Map<SafetensorsDtype, number>();
  for (const t of all) {
    if (quant?.packed(t)) continue;
    votes.set(t.dtype, (votes.get(t.dtype) ?? 0) + ((t.end - t.begin) * 8) / SAFETENSORS_DTYPE_BITS[t.dtype]);
  }
  const top = [...votes].filter(([, n]) => n > 0).sort(byCount)[0]?.[0];
  const out: SafetensorsDescription = {
    tensorCount: all.length,
    parameterCount,
    parameterSize: formatParamCount(parameterCount),
    tensorBytes,
    dtypes,
  };
  if (top) out.precision = SAFETENSORS_DTYPE_PRECISION[top];
  if (quant) out.quantization = quant.name;
  return out;
}

interface Quantization {
  name: string;
  /** A tensor whose dtype is a container for packed values, not a precision. */
  packed(t: SafetensorsTensor): boolean;
}

const never = () => false;

/**
 * Only what the headers show. `__metadata__` keys `quant_method` or `quantization` win; otherwise
 * the conventions of the common exporters: GPTQ (`qweight` + `g_idx`), AWQ (`qweight` + `qzeros` +
 * `scales`, no `g_idx`), bitsandbytes (`weight.quant_state.bitsandbytes__nf4|fp4`, int8 `SCB`),
 * MXFP4 (U8 `*_blocks` with `*_scales`, as gpt-oss ships), FP8 (F8 weights with `weight_scale` or
 * `weight_scale_inv`). config.json's `quantization_config` is read elsewhere.
 */
function detectQuantization(headers: readonly SafetensorsHeader[], all: readonly SafetensorsTensor[]): Quantization | undefined {
  const names = new Set(all.map((t) => t.name));
  const ends = (suffix: string) => all.some((t) => t.name.endsWith(suffix));
  const fromMeta = headers
    .map((h) => h.metadata?.quant_method ?? h.metadata?.quantization)
    .find((v) => typeof v === 'string' && v.trim() !== '');
  const qweight = ends('.qweight');
  const gptqPacked = (t: SafetensorsTensor) => /\.(qweight|qzeros|g_idx)$/.test(t.name);
  let found: Quantization | undefined;
  if (qweight && ends('.g_idx')) found = { name: 'gptq', packed: gptqPacked };
  else if (qweight && ends('.qzeros') && ends('.scales')) found = { name: 'awq', packed: gptqPacked };
  else if (qweight) found = { name: 'gptq', packed: gptqPacked };
  else {
    const bnb4 = all.find((t) => /\.quant_state\.bitsandbytes__(nf4|fp4)$/.test(t.name));
    if (bnb4) {
      const kind = bnb4.name.endsWith('nf4') ? 'nf4' : 'fp4';
      const packedBase = new Set(
        all.filter((t) => t.name.includes('.quant_state.bitsandbytes__')).map((t) => t.name.slice(0, t.name.indexOf('.quant_state.'))),
      );
      found = {
        name: `bitsandbytes-${kind}`,
        packed: (t) => packedBase.has(t.name) || /\.(absmax|quant_map|nested_absmax|nested_quant_map)$/.test(t.name) || t.name.includes('.quant_state.'),
      };
    } else if (all.some((t) => t.name.endsWith('.SCB') && names.has(`${t.name.slice(0, -4)}.weight`))) {
      found = { name: 'bitsandbytes-int8', packed: never };
    } else if (all.some((t) => t.dtype === 'U8' && t.name.endsWith('_blocks') && names.has(`${t.name.slice(0, -7)}_scales`))) {
      found = { name: 'mxfp4', packed: (t) => (t.name.endsWith('_blocks') || t.name.endsWith('_scales')) && t.dtype === 'U8' };
    } else if (
      all.some(
        (t) => (t.dtype === 'F8_E4M3' || t.dtype === 'F8_E5M2') && t.name.endsWith('.weight') &&
          (names.has(`${t.name}_scale`) || names.has(`${t.name}_scale_inv`)),
      )
    ) {
      found = { name: 'fp8', packed: never };
    }
  }
  if (fromMeta) return { name: fromMeta.trim(), packed: found?.packed ?? never };
  return found;
}

// ------------------------------------------------------------------------------------------------
// Sharded models

export interface SafetensorsModel {
  /** The index, for a sharded model. */
  indexPath?: string;
  /** The safetensors files read, in name order (shards as the index names them, joined to its directory). */
  files: string[];
  headers: SafetensorsHeader[];
  description: SafetensorsDescription;
  /** The index's `metadata.total_size`, when it has one. */
  totalSize?: number;
  /** Inconsistencies that do not stop the model from loading (total_size, tensors the index leaves out). */
  warnings: string[];
}

/**
 * Reads a model: a `.safetensors` file, a `*.safetensors.index.json`, or a directory holding
 * `model.safetensors.index.json` (or one other `*.safetensors.index.json`), else
 * `model.safetensors` (or its only `*.safetensors` file). For an index every shard's header is
 * read, and every tensor of `weight_map` must be in the shard it names.
 */
export async function readSafetensorsModel(path: string): Promise<SafetensorsModel> {
  let st: Stats;
  try {
    st = await stat(path);
  } catch (e) {
    throw fsError(e, path);
  }
  let target = path;
  if (st.isDirectory()) target = await pickModelFile(path);
  if (basename(target).toLowerCase().endsWith('.json')) return readIndexedModel(target);
  const header = await readSafetensorsHeader(target);
  return { files: [target], headers: [header], description: describeSafetensors([header]), warnings: [] };
}

async function pickModelFile(dir: string): Promise<string> {
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (e) {
    throw fsError(e, dir);
  }
  const indexes = names.filter((n) => n.endsWith('.safetensors.index.json'));
  const files = names.filter((n) => n.endsWith('.safetensors'));
  if (indexes.includes(SAFETENSORS_INDEX_NAME)) return join(dir, SAFETENSORS_INDEX_NAME);
  if (indexes.length === 1) return join(dir, indexes[0]!);
  if (indexes.length > 1) {
    throw new PackError('USAGE', `${dir}: several safetensors indexes (${indexes.join(', ')})`, { hint: 'give the index of the model you mean' });
  }
  if (files.includes('model.safetensors')) return join(dir, 'model.safetensors');
  if (files.length === 1) return join(dir, files[0]!);
  if (files.length > 1) {
    throw new PackError('USAGE', `${dir}: several .safetensors files and no ${SAFETENSORS_INDEX_NAME}`, {
      hint: 'give one file, or the index that joins them',
    });
  }
  throw new PackError('NOT_FOUND', `${dir}: no ${SAFETENSORS_INDEX_NAME} and no .safetensors file`, { hint: 'give the directory of a safetensors model' });
}

function corruptIndex(path: string, why: string, cause?: unknown): PackError {
  return new PackError('CORRUPT', `${path}: not a valid safetensors index: ${why}`, {
    cause,
    hint: 'download or export the index again, from the same revision as its shards',
  });
}

async function readIndexedModel(indexPath: string): Promise<SafetensorsModel> {
  const { fh, st } = await openRegularFile(indexPath);
  let bytes: Buffer;
  try {
    if (st.size > SAFETENSORS_MAX_INDEX_BYTES) {
      throw new PackError('SIZE_EXCEEDS_LIMIT', `${indexPath}: index of ${st.size} bytes exceeds the ${SAFETENSORS_MAX_INDEX_BYTES}-byte limit`, {
        hint: 'real indexes are well under 1 MiB: download the index again, or give the shard files themselves',
      });
    }
    bytes = await readAt(fh, indexPath, 0, st.size);
  } finally {
    await fh.close().catch(() => {});
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (e) {
    throw corruptIndex(indexPath, 'not valid UTF-8', e);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw corruptIndex(indexPath, `not valid JSON (${(e as Error).message})`, e);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw corruptIndex(indexPath, 'not a JSON object');
  const { weight_map: weightMap, metadata } = json as Record<string, unknown>;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw corruptIndex(indexPath, 'weight_map is missing or not a JSON object');
  }
  const entries = Object.entries(weightMap as Record<string, unknown>);
  if (entries.length === 0) throw corruptIndex(indexPath, 'weight_map names no tensor');

  // tensor → shard, with every shard name checked before any file is opened.
  const shardOf = new Map<string, string>();
  const shards = new Set<string>();
  for (const [tensor, file] of entries) {
    if (typeof file !== 'string') throw corruptIndex(indexPath, `weight_map[${quoteName(tensor)}] is not a file name`);
    let rel: string;
    try {
      rel = safeRelativePath(file, `${indexPath}: weight_map[${quoteName(tensor)}]`);
    } catch (e) {
      throw new PackError('UNSAFE_PATH', (e as Error).message, {
        cause: e,
        hint: 'an index may only name files in its own directory or below; nothing outside it was read',
      });
    }
    shardOf.set(tensor, rel);
    shards.add(rel);
  }

  const warnings: string[] = [];
  let totalSize: number | undefined;
  if (metadata !== undefined && metadata !== null) {
    const ts = typeof metadata === 'object' ? (metadata as Record<string, unknown>).total_size : undefined;
    if (typeof metadata !== 'object' || Array.isArray(metadata)) warnings.push(`${indexPath}: metadata is not a JSON object; ignored`);
    else if (ts !== undefined) {
      const n = typeof ts === 'string' && /^\d+$/.test(ts) ? Number(ts) : ts;
      if (typeof n === 'number' && Number.isSafeInteger(n) && n >= 0) totalSize = n;
      else warnings.push(`${indexPath}: metadata.total_size is not a byte count; not checked`);
    }
  }

  const dir = dirname(indexPath);
  const relFiles = [...shards].sort();
  const files = relFiles.map((rel) => join(dir, rel));
  const headers = await mapBounded(
    relFiles,
    async (rel, i) => {
      try {
        return await readSafetensorsHeader(files[i]!);
      } catch (e) {
        if (e instanceof PackError && e.code === 'NOT_FOUND') {
          throw new PackError('NOT_FOUND', `${indexPath}: weight_map names shard ${quoteName(rel)}, which does not exist`, {
            cause: e,
            hint: 'download the missing shard, or use the index that belongs with these shards',
          });
        }
        throw e;
      }
    },
    4,
  );

  // Every tensor of weight_map must be in the shard it names.
  const held = new Map<string, Set<string>>(relFiles.map((rel, i) => [rel, new Set(headers[i]!.tensors.map((t) => t.name))]));
  const missing = [...shardOf].filter(([tensor, rel]) => !held.get(rel)!.has(tensor));
  if (missing.length > 0) {
    const [tensor, rel] = missing[0]!;
    const more = missing.length > 1 ? ` (and ${missing.length - 1} more tensor(s) of weight_map are missing)` : '';
    throw new PackError('CORRUPT', `${indexPath}: weight_map puts tensor ${quoteName(tensor)} in ${quoteName(rel)}, which does not hold it${more}`, {
      hint: 'the index and the shards do not belong together: download both again from the same revision',
    });
  }

  // Tensors the index does not name are still in the files (and counted); one that is in several
  // shards is counted once, where weight_map puts it.
  const seen = new Set<string>();
  const unnamed: string[] = [];
  const duplicated: string[] = [];
  const counted = headers.map((h, i) => {
    const rel = relFiles[i]!;
    const tensors = h.tensors.filter((t) => {
      const named = shardOf.get(t.name);
      if (named === undefined) {
        if (seen.has(t.name)) {
          duplicated.push(t.name);
          return false;
        }
        unnamed.push(t.name);
      } else if (named !== rel) {
        duplicated.push(t.name);
        return false;
      }
      seen.add(t.name);
      return true;
    });
    return tensors.length === h.tensors.length ? h : { ...h, tensors };
  });
  if (unnamed.length > 0) {
    warnings.push(`${indexPath}: ${unnamed.length} tensor(s) in the shards are not in weight_map (first ${quoteName(unnamed[0]!)}); counted`);
  }
  if (duplicated.length > 0) {
    warnings.push(`${indexPath}: ${duplicated.length} tensor(s) appear in more than one shard (first ${quoteName(duplicated[0]!)}); counted once`);
  }
  const description = describeSafetensors(counted);
  if (totalSize !== undefined && totalSize !== description.tensorBytes) {
    warnings.push(`${indexPath}: metadata.total_size is ${totalSize} but the shards' tensors hold ${description.tensorBytes} bytes`);
  }
  const out: SafetensorsModel = { indexPath, files, headers, description, warnings };
  if (totalSize !== undefined) out.totalSize = totalSize;
  return out;
}
