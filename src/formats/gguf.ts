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
import { PackError, fsError } from '../errors.js';
import { openRegularFile } from '../internal/file-read.js';
import { GGML_TYPES, ggmlTypeName } from './gguf-types.js';
import { FIXED_SIZE, GgufType, ggufTypeName, type GgufKv, type GgufValue } from './gguf-value.js';
import { CORRUPT_HINT, LIMIT_HINT, Reader, quote } from './gguf-reader.js';

export { GgufType, ggufTypeName, plainGgufValue, type GgufArray, type GgufKv, type GgufPlainValue, type GgufTypeName, type GgufValue } from './gguf-value.js';

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


/** Reads the header of the GGUF file at path. Never reads tensor data. */
export async function readGgufHeader(path: string, opts: ReadGgufOptions = {}): Promise<GgufHeader> {
  const o = { ...DEFAULTS, ...stripUndefined(opts) };
  // O_NONBLOCK: a FIFO or device named like a model is refused, never waited on
  const { fh, st } = await openRegularFile(path, { what: 'cannot open', notFile: { code: 'USAGE', hint: 'give a .gguf file' } });
  try {
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

function bigEndian(path: string): PackError {
  return new PackError('UNSUPPORTED', `${path}: big-endian GGUF files are not supported`, {
    hint: "convert it to little-endian first (llama.cpp's gguf-py: gguf-convert-endian FILE little)",
  });
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export { ggmlTypeName };
