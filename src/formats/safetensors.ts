/**
 * Safetensors: the header of one file, checked the way huggingface/safetensors checks it, without
 * reading the tensor data. What a set of headers says about the model is safetensors-describe.ts;
 * sharded models (`model.safetensors.index.json`) are safetensors-model.ts.
 *
 * A file is `u64 little-endian N`, then N bytes of UTF-8 JSON, then the data section. The JSON
 * maps tensor names to `{dtype, shape, data_offsets: [begin, end]}` (offsets relative to the data
 * section) plus an optional `__metadata__` string → string map. Everything read from the file is
 * untrusted: sizes are checked before anything is allocated, and every failure is a PackError.
 */
import { PackError } from '../errors.js';
import { openRegularFile, readAt } from '../internal/file-read.js';

/** The reference implementation's limit (`MAX_HEADER_SIZE` in huggingface/safetensors): 100,000,000 bytes. */
export const SAFETENSORS_MAX_HEADER_BYTES = 100_000_000;

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
  const json = parseJsonObject(raw, (why, cause) => corrupt(path, `the header is ${why}`, cause));

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

/**
 * Strict UTF-8, then JSON, then an object (not an array, not null); `fail(why)` makes the error:
 * why is `not valid UTF-8`, `not valid JSON (…)` or `not a JSON object`.
 */
export function parseJsonObject(bytes: Uint8Array, fail: (why: string, cause?: unknown) => Error): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (e) {
    throw fail('not valid UTF-8', e);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw fail(`not valid JSON (${(e as Error).message})`, e);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw fail('not a JSON object');
  return json as Record<string, unknown>;
}
