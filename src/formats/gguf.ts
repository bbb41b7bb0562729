/**
 * GGUF header reader (versions 2 and 3, little-endian): magic, version, metadata of every value
 * type (nested arrays included) and tensor infos, read through a file handle in bounded chunks,
 * so a 40 GB model costs the few megabytes of its header. Nothing read from the file is trusted:
 * every length and count is checked against what is left of the file and against limits before
 * anything is allocated, and a corrupt or truncated header is a CORRUPT PackError naming the file
 * and the byte where reading failed. Big-endian files and versions other than 2 and 3 are
 * UNSUPPORTED.
 *
 * Layout (ggml/docs/gguf.md): "GGUF" u32:version u64:tensor_count u64:kv_count, kv_count × (string
 * key, u32 type, value), tensor_count × (string name, u32 n_dims, u64 dims[n_dims], u32 ggml_type,
 * u64 offset), padding to `general.alignment` (default 32), tensor data. A string is u64 length +
 * UTF-8 bytes; an array is u32 element type + u64 count + elements.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { PackError, fsError } from '../errors.js';
import { formatParamCount } from './param-size.js';
import { GGML_TYPES, fileTypeName, ggmlTypeName, guessedFileTypeName } from './gguf-types.js';

/** GGUF metadata value types (`enum gguf_type`). */
export const GgufType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;
export type GgufType = (typeof GgufType)[keyof typeof GgufType];

const TYPE_NAMES = ['uint8', 'int8', 'uint16', 'int16', 'uint32', 'int32', 'float32', 'bool', 'string', 'array', 'uint64', 'int64', 'float64'] as const;
export type GgufTypeName = (typeof TYPE_NAMES)[number];

/** 'uint32' for GgufType.UINT32. */
export function ggufTypeName(t: GgufType): GgufTypeName {
  return TYPE_NAMES[t]!;
}

/** Bytes of a fixed-size value type; 0 for STRING and ARRAY. */
const FIXED_SIZE = [1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8] as const;

/** An array value: its element type and its items (nested arrays are GgufArrays too). */
export interface GgufArray {
  readonly elementType: GgufType;
  readonly items: GgufValue[];
}

/** Integers up to 32 bits and floats are numbers, 64-bit integers bigints. */
export type GgufValue = number | bigint | boolean | string | GgufArray;

/** One metadata value with its GGUF type. */
export interface GgufKv {
  readonly type: GgufType;
  readonly value: GgufValue;
}

export interface GgufTensorInfo {
  readonly name: string;
  /** ne[0] first, as stored */
  readonly dims: number[];
  /** ggml type id */
  readonly type: number;
  /** 'Q4_K'; undefined for a type id ggml does not define (yet) */
  readonly typeName: string | undefined;
  /** bytes from the start of the data section */
  readonly offset: number;
  /** elements (the product of dims) */
  readonly elements: number;
  /** bytes of data; undefined when the type is unknown */
  readonly bytes: number | undefined;
}

export interface GgufHeader {
  readonly path: string;
  readonly version: 2 | 3;
  readonly tensorCount: number;
  /** in file order */
  readonly metadata: ReadonlyMap<string, GgufKv>;
  readonly tensors: readonly GgufTensorInfo[];
  readonly alignment: number;
  /** end of the tensor infos (the header proper, before padding) */
  readonly headerSize: number;
  /** where tensor data starts: headerSize padded to alignment */
  readonly dataOffset: number;
  readonly fileSize: number;
}

export interface ReadGgufOptions {
  /** most header bytes read before giving up (default 512 MiB) */
  maxHeaderBytes?: number;
  /** longest string: key, value or tensor name (default 1 MiB) */
  maxStringBytes?: number;
  /** array elements in the whole header, nested ones included (default 16 Mi) */
  maxArrayElements?: number;
  /** nested array levels (default 4: an array of arrays of arrays of arrays) */
  maxArrayDepth?: number;
  /** default 1 Mi */
  maxTensors?: number;
  /** default 1 Mi */
  maxKeys?: number;
  /** bytes per read (default 1 MiB) */
  chunkSize?: number;
  /** check that every tensor's data lies inside the file (default true): catches truncated downloads */
  checkDataBounds?: boolean;
}

const DEFAULTS = {
  maxHeaderBytes: 512 * 1024 * 1024,
  maxStringBytes: 1024 * 1024,
  maxArrayElements: 16 * 1024 * 1024,
  maxArrayDepth: 4,
  maxTensors: 1024 * 1024,
  maxKeys: 1024 * 1024,
  chunkSize: 1024 * 1024,
  checkDataBounds: true,
};

const MAX_DIMS = 8;
const DEFAULT_ALIGNMENT = 32;
const MAX_ALIGNMENT = 1 << 30;
const MAGIC = Buffer.from('GGUF', 'latin1');
const SWAPPED_MAGIC = Buffer.from('FUGG', 'latin1');
const CORRUPT_HINT = 'the file is damaged or incomplete: download or convert it again';
const LIMIT_HINT = 'if the file is genuine, raise the limit (readGgufHeader options) or report it';

/** Reads the header of the GGUF file at path. Never reads tensor data. */
export async function readGgufHeader(path: string, opts: ReadGgufOptions = {}): Promise<GgufHeader> {
  const o = { ...DEFAULTS, ...stripUndefined(opts) };
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw fsError(e, path, 'cannot open');
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new PackError('USAGE', `${path}: not a regular file`, { hint: 'give a .gguf file' });
    const r = new Reader(fh, path, st.size, o.chunkSize, o.maxHeaderBytes);
    return await parse(r, path, st.size, o);
  } catch (e) {
    // file system errors get a code and a hint; anything else is a bug and stays as it is
    if (typeof (e as NodeJS.ErrnoException)?.code === 'string' && !(e instanceof PackError)) throw fsError(e, path, 'cannot read');
    throw e;
  } finally {
    await fh.close().catch(() => undefined);
  }
}

async function parse(r: Reader, path: string, fileSize: number, o: typeof DEFAULTS): Promise<GgufHeader> {
  r.what = 'the magic';
  await r.need(4);
  const magic = r.bytes(4);
  if (magic.equals(SWAPPED_MAGIC)) throw bigEndian(path);
  if (!magic.equals(MAGIC)) {
    const shown = [...magic].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '?')).join('');
    throw new PackError('CORRUPT', `${path}: not a valid GGUF file: it starts with '${shown}', not 'GGUF'`, { hint: 'give a .gguf file' });
  }
  r.what = 'the version';
  await r.need(4);
  const version = r.u32();
  if (version !== 2 && version !== 3) {
    const swapped = ((version & 0xff) << 24) | ((version & 0xff00) << 8) | ((version >>> 8) & 0xff00) | (version >>> 24);
    if ((version & 0xffff) === 0 && swapped >= 1 && swapped <= 3) throw bigEndian(path);
    if (version === 0) throw r.corrupt('version 0');
    if (version === 1) {
      throw new PackError('UNSUPPORTED', `${path}: GGUF version 1 is not supported (only 2 and 3)`, { hint: 'convert the model again with a current llama.cpp' });
    }
    throw new PackError('UNSUPPORTED', `${path}: GGUF version ${version} is not supported (only 2 and 3)`, {
      hint: version < 0x10000 ? 'a newer mpk may read it' : 'the file may be damaged, or big-endian',
    });
  }

  await r.need(16);
  const tensorCount = r.u64();
  const kvCount = r.u64();
  // the smallest key/value takes 13 bytes (key length 8, type 4, a one-byte value), the smallest
  // tensor info 24 (name length 8, n_dims 4, type 4, offset 8)
  r.what = 'the header';
  r.checkCount(kvCount, 13, o.maxKeys, 'metadata keys');
  r.checkCount(tensorCount, 24, o.maxTensors, 'tensors');

  const metadata = new Map<string, GgufKv>();
  const budget = { elements: 0, max: o.maxArrayElements, maxDepth: o.maxArrayDepth };
  for (let i = 0; i < Number(kvCount); i++) {
    r.what = `metadata key #${i}`;
    const key = await r.string(o.maxStringBytes);
    if (key === '') throw r.corrupt(`metadata key #${i} is empty`);
    if (metadata.has(key)) throw r.corrupt(`metadata key ${quote(key)} appears twice`);
    r.what = `the type of ${quote(key)}`;
    await r.need(4);
    const type = r.valueType();
    r.what = `the value of ${quote(key)}`;
    metadata.set(key, { type, value: await readValue(r, type, 0, budget, o.maxStringBytes) });
  }

  let alignment = DEFAULT_ALIGNMENT;
  const al = metadata.get('general.alignment');
  if (al) {
    if (al.type !== GgufType.UINT32) throw r.corrupt(`general.alignment is a ${ggufTypeName(al.type)}, not a uint32`, false);
    alignment = al.value as number;
    if (alignment === 0 || (alignment & (alignment - 1)) !== 0 || alignment > MAX_ALIGNMENT) {
      throw r.corrupt(`general.alignment ${alignment} is not a power of two up to 2^30`, false);
    }
  }

  const tensors: GgufTensorInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < Number(tensorCount); i++) {
    r.what = `the name of tensor #${i}`;
    const name = await r.string(o.maxStringBytes);
    if (names.has(name)) throw r.corrupt(`tensor name ${quote(name)} appears twice`);
    names.add(name);
    const label = `tensor ${quote(name)}`;
    r.what = `the dimensions of ${label}`;
    await r.need(4);
    const nDims = r.u32();
    if (nDims > MAX_DIMS) throw r.corrupt(`${label} has ${nDims} dimensions (at most ${MAX_DIMS})`);
    await r.need(8 * nDims + 4 + 8);
    const dims: number[] = [];
    let elements = 1;
    for (let d = 0; d < nDims; d++) {
      const n = r.u64();
      if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw r.corrupt(`${label} dimension ${d} is ${n}`);
      dims.push(Number(n));
      elements *= Number(n);
    }
    if (elements > Number.MAX_SAFE_INTEGER) throw r.corrupt(`${label} has ${dims.join(' × ')} elements`);
    r.what = `the type of ${label}`;
    const type = r.u32();
    r.what = `the offset of ${label}`;
    const off = r.u64();
    const info = GGML_TYPES.get(type);
    let bytes: number | undefined;
    if (info) {
      if ((dims[0] ?? 1) % info.blockSize !== 0) {
        throw r.corrupt(`${label} has rows of ${dims[0] ?? 1} elements, not a multiple of the ${info.name} block size ${info.blockSize}`, false);
      }
      bytes = (elements / info.blockSize) * info.typeSize;
    }
    if (off > BigInt(Number.MAX_SAFE_INTEGER)) throw r.corrupt(`${label} has data offset ${off}`, false);
    const offset = Number(off);
    if (offset % alignment !== 0) throw r.corrupt(`${label} data offset ${offset} is not a multiple of the alignment ${alignment}`, false);
    tensors.push({ name, dims, type, typeName: info?.name, offset, elements, bytes });
  }

  const headerSize = r.pos;
  const dataOffset = Math.ceil(headerSize / alignment) * alignment;
  if (o.checkDataBounds) {
    for (const t of tensors) {
      const end = dataOffset + t.offset + (t.bytes ?? 0);
      if (end > fileSize) {
        throw new PackError('CORRUPT', `${path}: not a valid GGUF file: the data of tensor ${quote(t.name)} ends at byte ${end}, but the file has ${fileSize} bytes (truncated?)`, {
          hint: CORRUPT_HINT,
        });
      }
    }
  }
  return { path, version, tensorCount: tensors.length, metadata, tensors, alignment, headerSize, dataOffset, fileSize };
}

interface Budget {
  elements: number;
  readonly max: number;
  readonly maxDepth: number;
}

async function readValue(r: Reader, type: GgufType, depth: number, budget: Budget, maxString: number): Promise<GgufValue> {
  if (type === GgufType.STRING) return r.string(maxString);
  if (type !== GgufType.ARRAY) {
    await r.need(FIXED_SIZE[type]);
    return r.scalar(type);
  }
  if (depth >= budget.maxDepth) {
    throw new PackError('SIZE_EXCEEDS_LIMIT', `${r.path}: ${r.what} has arrays nested more than ${budget.maxDepth} deep (byte ${r.pos})`, { hint: LIMIT_HINT });
  }
  await r.need(12);
  const elementType = r.valueType();
  const count = r.u64();
  // every element takes at least its fixed size, 8 bytes (a string length) or 12 (an array's type and count)
  const min = elementType === GgufType.STRING ? 8 : elementType === GgufType.ARRAY ? 12 : FIXED_SIZE[elementType];
  r.checkCount(count, min, budget.max - budget.elements, 'array elements', budget.max);
  const n = Number(count);
  budget.elements += n;
  const items: GgufValue[] = [];
  if (elementType === GgufType.STRING) {
    for (let i = 0; i < n; i++) items.push(r.hasString(maxString) ?? (await r.string(maxString)));
  } else if (elementType === GgufType.ARRAY) {
    for (let i = 0; i < n; i++) items.push(await readValue(r, elementType, depth + 1, budget, maxString));
  } else {
    const size = FIXED_SIZE[elementType];
    for (let i = 0; i < n; ) {
      let ready = Math.min(r.buffered() / size, n - i) | 0;
      if (ready === 0) {
        await r.need(size);
        ready = 1;
      }
      for (const stop = i + ready; i < stop; i++) items.push(r.scalar(elementType));
    }
  }
  return { elementType, items };
}

/** A forward-only reader over a file handle with one refillable buffer (64 KiB, then chunkSize, or one string). */
class Reader {
  /** what is being read, for error messages */
  what = 'the header';
  private buf: Buffer;
  private start = 0; // next unread byte in buf
  private end = 0; // end of valid bytes in buf
  private filePos = 0; // file offset of buf[end]

  constructor(
    private readonly fh: FileHandle,
    readonly path: string,
    private readonly fileSize: number,
    private readonly chunkSize: number,
    private readonly maxHeaderBytes: number,
  ) {
    // small first: most files are only asked for their first bytes (and small headers fit)
    this.buf = Buffer.allocUnsafe(Math.max(64, Math.min(chunkSize, fileSize, 64 * 1024)));
  }

  /** file offset of the next unread byte */
  get pos(): number {
    return this.filePos - (this.end - this.start);
  }

  buffered(): number {
    return this.end - this.start;
  }

  corrupt(reason: string, withPos = true): PackError {
    const at = withPos ? ` at byte ${this.pos}` : '';
    return new PackError('CORRUPT', `${this.path}: not a valid GGUF file${at}: ${reason}`, { hint: CORRUPT_HINT });
  }

  /**
   * A count read from the file: each item takes at least minBytes, so more than the rest of the
   * file holds is corruption; more than `limit` is over a limit.
   */
  checkCount(count: bigint, minBytes: number, limit: number, what: string, totalLimit = limit): void {
    const left = this.fileSize - this.pos;
    if (count * BigInt(minBytes) > BigInt(left)) {
      throw this.corrupt(`${this.what} claims ${count} ${what}, more than the remaining ${left} bytes of the file can hold (truncated or corrupt)`);
    }
    if (count > BigInt(limit)) {
      throw new PackError('SIZE_EXCEEDS_LIMIT', `${this.path}: ${this.what} has ${count} ${what}, over mpk's limit of ${totalLimit}`, { hint: LIMIT_HINT });
    }
  }

  /** Makes n bytes available in the buffer, reading from the file as needed. */
  async need(n: number): Promise<void> {
    if (this.end - this.start >= n) return;
    const pos = this.pos;
    if (pos + n > this.fileSize) throw this.truncated(n);
    if (pos + n > this.maxHeaderBytes) {
      throw new PackError('SIZE_EXCEEDS_LIMIT', `${this.path}: the GGUF header is larger than mpk's limit of ${this.maxHeaderBytes} bytes (reading ${this.what})`, {
        hint: LIMIT_HINT,
      });
    }
    const have = this.end - this.start;
    const want = Math.max(n, Math.min(this.chunkSize, this.fileSize - pos));
    if (want > this.buf.length) {
      const bigger = Buffer.allocUnsafe(want);
      this.buf.copy(bigger, 0, this.start, this.end);
      this.buf = bigger;
    } else if (this.start > 0) {
      this.buf.copy(this.buf, 0, this.start, this.end);
    }
    this.start = 0;
    this.end = have;
    while (this.end < n) {
      // never buffer past the header limit, so every byte beyond it goes through the check above
      const room = Math.min(this.buf.length - this.end, this.maxHeaderBytes - this.filePos);
      const { bytesRead } = await this.fh.read(this.buf, this.end, room, this.filePos);
      if (bytesRead === 0) throw this.truncated(n); // the file shrank while we read it
      this.end += bytesRead;
      this.filePos += bytesRead;
    }
  }

  private truncated(n: number): PackError {
    return new PackError(
      'CORRUPT',
      `${this.path}: not a valid GGUF file: truncated: ${this.what} needs ${n} bytes at byte ${this.pos}, but the file has ${this.fileSize} bytes`,
      { hint: CORRUPT_HINT },
    );
  }

  bytes(n: number): Buffer {
    const b = this.buf.subarray(this.start, this.start + n);
    this.start += n;
    return b;
  }

  u32(): number {
    const v = this.buf.readUInt32LE(this.start);
    this.start += 4;
    return v;
  }

  u64(): bigint {
    const v = this.buf.readBigUInt64LE(this.start);
    this.start += 8;
    return v;
  }

  valueType(): GgufType {
    const t = this.buf.readUInt32LE(this.start);
    if (t > GgufType.FLOAT64) throw this.corrupt(`${this.what} has unknown value type ${t}`);
    this.start += 4;
    return t as GgufType;
  }

  /** A fixed-size value already in the buffer. */
  scalar(type: GgufType): number | bigint | boolean {
    const b = this.buf;
    const p = this.start;
    this.start += FIXED_SIZE[type];
    switch (type) {
      case GgufType.UINT8:
        return b[p]!;
      case GgufType.INT8:
        return b.readInt8(p);
      case GgufType.UINT16:
        return b.readUInt16LE(p);
      case GgufType.INT16:
        return b.readInt16LE(p);
      case GgufType.UINT32:
        return b.readUInt32LE(p);
      case GgufType.INT32:
        return b.readInt32LE(p);
      case GgufType.FLOAT32:
        return b.readFloatLE(p);
      case GgufType.BOOL: {
        const v = b[p]!;
        if (v > 1) {
          this.start = p;
          throw this.corrupt(`${this.what} has a bool of ${v}, neither 0 nor 1`);
        }
        return v === 1;
      }
      case GgufType.UINT64:
        return b.readBigUInt64LE(p);
      case GgufType.INT64:
        return b.readBigInt64LE(p);
      case GgufType.FLOAT64:
        return b.readDoubleLE(p);
      default:
        throw new Error(`not a fixed-size GGUF type: ${type}`);
    }
  }

  /** A u64 length as a number: exact below 2^53, and beyond that larger than any limit anyway. */
  private length(at: number): number {
    return this.buf.readUInt32LE(at + 4) * 0x100000000 + this.buf.readUInt32LE(at);
  }

  /** The next string when it is already buffered (the fast path for string arrays), else undefined. */
  hasString(max: number): string | undefined {
    if (this.end - this.start < 8) return undefined;
    const len = this.length(this.start);
    if (len > max || len > this.end - this.start - 8) return undefined;
    const s = this.start + 8;
    this.start = s + len;
    return this.buf.toString('utf8', s, this.start);
  }

  async string(max: number): Promise<string> {
    await this.need(8);
    const len = this.length(this.start);
    const left = this.fileSize - this.pos - 8;
    if (len > left) {
      throw this.corrupt(`${this.what} is a string of ${this.buf.readBigUInt64LE(this.start)} bytes, but only ${left} bytes of the file remain (truncated or corrupt)`);
    }
    if (len > max) {
      throw new PackError('SIZE_EXCEEDS_LIMIT', `${this.path}: ${this.what} is a string of ${len} bytes, over mpk's limit of ${max}`, { hint: LIMIT_HINT });
    }
    await this.need(8 + len);
    this.start += 8;
    return this.bytes(len).toString('utf8');
  }
}

/** A name from the file, fit for a message: single-quoted, control characters escaped, at most 100 characters. */
function quote(s: string): string {
  const short = s.length > 100 ? `${s.slice(0, 100)}…` : s;
  return `'${short.replace(/[\u0000-\u001f\u007f-\u009f'\\]/g, (c) => (c === "'" || c === '\\' ? `\\${c}` : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`))}'`;
}

function bigEndian(path: string): PackError {
  return new PackError('UNSUPPORTED', `${path}: big-endian GGUF files are not supported`, {
    hint: "convert it to little-endian first (llama.cpp's gguf-py: gguf-convert-endian FILE little)",
  });
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

// ---------------------------------------------------------------------------------------------
// Derived description

/** A metadata value made JSON-safe: bigints as numbers (or decimal strings past 2^53), non-finite floats as strings, long arrays summarised. */
export type GgufSummaryValue = string | number | boolean | GgufSummaryValue[] | GgufArraySummary;

export interface GgufArraySummary {
  type: 'array';
  elementType: GgufTypeName;
  length: number;
}

export interface GgufSplit {
  /** 0-based shard index (split.no) */
  no: number;
  /** shards in the set (split.count) */
  count: number;
  /** tensors in the whole set (split.tensors.count) */
  tensorsCount: number;
}

export interface GgufDescription {
  architecture?: string;
  name?: string;
  /** elements of every tensor in this file */
  parameterCount: number;
  /** '7.24B' */
  parameterSize: string;
  /** llama.cpp's file type name: 'Q4_K_M', 'Q8_0', 'F16', 'BF16' … */
  quantization?: string;
  /** where quantization came from: general.file_type, or the most common tensor type */
  quantizationSource?: 'file_type' | 'tensors';
  /** general.file_type as stored */
  fileType?: number;
  /** <architecture>.context_length */
  contextLength?: number;
  split?: GgufSplit;
  /** every key, arrays longer than maxArrayItems summarised by type and length */
  metadataSummary: Record<string, GgufSummaryValue>;
}

export interface DescribeOptions {
  /** arrays longer than this are summarised (default 64) */
  maxArrayItems?: number;
}

/** What a GGUF header says about its model, for the ModelPack config. Never throws. */
export function describeGguf(header: GgufHeader, opts: DescribeOptions = {}): GgufDescription {
  const md = header.metadata;
  const str = (k: string): string | undefined => {
    const v = md.get(k)?.value;
    return typeof v === 'string' ? v : undefined;
  };
  const int = (k: string): number | undefined => {
    const v = md.get(k)?.value;
    if (typeof v === 'bigint') return v >= 0n && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : undefined;
    return typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : undefined;
  };

  let parameterCount = 0;
  for (const t of header.tensors) parameterCount += t.elements;
  const out: GgufDescription = {
    parameterCount,
    parameterSize: formatParamCount(parameterCount),
    metadataSummary: summarizeMetadata(md, opts.maxArrayItems ?? 64),
  };
  const architecture = str('general.architecture');
  if (architecture !== undefined) out.architecture = architecture;
  const name = str('general.name');
  if (name !== undefined) out.name = name;

  const fileType = int('general.file_type');
  const fromFile = fileType === undefined ? undefined : fileTypeName(fileType, new Set(header.tensors.map((t) => t.type)));
  if (fileType !== undefined) out.fileType = fileType;
  if (fromFile !== undefined) {
    out.quantization = fromFile;
    out.quantizationSource = 'file_type';
  } else {
    const dominant = dominantTensorType(header.tensors);
    const guessed = dominant === undefined ? undefined : guessedFileTypeName(dominant);
    if (guessed !== undefined) {
      out.quantization = guessed;
      out.quantizationSource = 'tensors';
    }
  }

  if (architecture !== undefined) {
    const ctx = int(`${architecture}.context_length`);
    if (ctx !== undefined) out.contextLength = ctx;
  }
  const no = int('split.no');
  const count = int('split.count');
  const tensorsCount = int('split.tensors.count');
  if (no !== undefined && count !== undefined && tensorsCount !== undefined) out.split = { no, count, tensorsCount };
  return out;
}

/**
 * The type with the most tensors, as llama.cpp guesses a file type (first to reach the maximum
 * wins); undefined without tensors of a known type.
 */
function dominantTensorType(tensors: readonly GgufTensorInfo[]): number | undefined {
  const counts = new Map<number, number>();
  let best: number | undefined;
  let bestCount = 0;
  for (const t of tensors) {
    if (t.typeName === undefined) continue;
    const c = (counts.get(t.type) ?? 0) + 1;
    counts.set(t.type, c);
    if (c > bestCount) {
      bestCount = c;
      best = t.type;
    }
  }
  return best;
}

function summarizeMetadata(md: ReadonlyMap<string, GgufKv>, maxItems: number): Record<string, GgufSummaryValue> {
  const out: Record<string, GgufSummaryValue> = {};
  for (const [k, kv] of md) {
    // defineProperty: a key such as "__proto__" stays an ordinary member
    Object.defineProperty(out, k, { value: summarize(kv.value, maxItems), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function summarize(v: GgufValue, maxItems: number): GgufSummaryValue {
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (typeof v !== 'object') return v;
  if (v.items.length > maxItems) return { type: 'array', elementType: ggufTypeName(v.elementType), length: v.items.length };
  return v.items.map((x) => summarize(x, maxItems));
}

/** A metadata value without GGUF types: arrays as plain (nested) arrays. */
export type GgufPlainValue = number | bigint | boolean | string | GgufPlainValue[];

export function plainGgufValue(v: GgufValue): GgufPlainValue {
  return typeof v === 'object' ? v.items.map(plainGgufValue) : v;
}

/**
 * One description for a sharded model (`name-00001-of-00003.gguf` …): the shards' split.* keys
 * must agree and cover 0..count-1 once each, and their tensors must add up to split.tensors.count.
 * Parameters are summed; everything else comes from the first shard, which holds the metadata.
 */
export function describeGgufShards(headers: readonly GgufHeader[], opts: DescribeOptions = {}): GgufDescription {
  if (headers.length === 0) throw new PackError('USAGE', 'no GGUF shards given');
  const descs = headers.map((h) => describeGguf(h, opts));
  if (headers.length === 1 && !descs[0]!.split) return descs[0]!;
  const bySplit = new Map<number, number>();
  const first = descs.find((d) => d.split?.no === 0)?.split ?? descs[0]!.split;
  descs.forEach((d, i) => {
    const p = headers[i]!.path;
    const s = d.split;
    if (!s) throw new PackError('CORRUPT', `${p}: not a GGUF shard: it has no split.no, split.count and split.tensors.count`, { hint: 'give either one GGUF file or every shard of one model' });
    if (s.count !== first!.count || s.tensorsCount !== first!.tensorsCount) {
      throw new PackError('CORRUPT', `${p}: shard ${s.no + 1} of ${s.count} (${s.tensorsCount} tensors) does not belong with shard ${first!.no + 1} of ${first!.count} (${first!.tensorsCount} tensors)`, {
        hint: 'give the shards of one model only',
      });
    }
    if (s.no >= s.count) throw new PackError('CORRUPT', `${p}: split.no ${s.no} is not below split.count ${s.count}`, { hint: CORRUPT_HINT });
    const dup = bySplit.get(s.no);
    if (dup !== undefined) throw new PackError('CORRUPT', `${p}: shard ${s.no + 1} of ${s.count} is also ${headers[dup]!.path}`, { hint: 'give each shard once' });
    bySplit.set(s.no, i);
  });
  const missing: number[] = [];
  for (let no = 0; no < first!.count; no++) if (!bySplit.has(no)) missing.push(no + 1);
  if (missing.length > 0) {
    throw new PackError('NOT_FOUND', `${headers[0]!.path}: shard${missing.length > 1 ? 's' : ''} ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', …' : ''} of ${first!.count} missing`, {
      hint: 'put every shard of the model in the build directory',
    });
  }
  const tensors = headers.reduce((n, h) => n + h.tensorCount, 0);
  if (tensors !== first!.tensorsCount) {
    throw new PackError('CORRUPT', `${headers[0]!.path}: the shards hold ${tensors} tensors, but split.tensors.count says ${first!.tensorsCount}`, { hint: CORRUPT_HINT });
  }
  const main = descs[bySplit.get(0)!]!;
  const parameterCount = descs.reduce((n, d) => n + d.parameterCount, 0);
  const out: GgufDescription = { ...main, parameterCount, parameterSize: formatParamCount(parameterCount) };
  // a quantization guessed from shard 0's tensors alone is worth redoing over all of them
  if (main.quantizationSource === 'tensors' || main.quantization === undefined) {
    const dominant = dominantTensorType(headers.flatMap((h) => h.tensors));
    const guessed = dominant === undefined ? undefined : guessedFileTypeName(dominant);
    if (guessed !== undefined) {
      out.quantization = guessed;
      out.quantizationSource = 'tensors';
    }
  }
  return out;
}

export { ggmlTypeName };
