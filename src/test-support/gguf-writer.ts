/**
 * Writes GGUF files for tests: versions 2 and 3, every value type (nested arrays too), tensor infos
 * with llama.cpp's layout (each tensor's data padded to the alignment, in order) and tensor data as
 * a sparse hole (ftruncate), so a "40 GB" model costs a few kilobytes of disk. It also reports
 * where each length and count field sits, for targeted corruption.
 */
import { open } from 'node:fs/promises';
import { GgufType, type GgufArray, type GgufKv, type GgufValue } from '../formats/gguf.js';
import { GGML_TYPES } from '../formats/gguf-types.js';

export interface GgufWriteTensor {
  name: string;
  dims: number[];
  /** ggml type id */
  type: number;
  /** bytes from the data section; default: packed in order like llama.cpp */
  offset?: number | bigint;
}

export interface GgufWriteSpec {
  /** default 3 */
  version?: number;
  metadata?: Iterable<readonly [string, GgufKv]>;
  tensors?: GgufWriteTensor[];
  /** numbers in big-endian order (the magic stays "GGUF", as llama.cpp writes it) */
  bigEndian?: boolean;
  /** write these counts instead of the real ones */
  tensorCount?: bigint;
  kvCount?: bigint;
}

export interface GgufField {
  /** byte offset in the header */
  at: number;
  size: 4 | 8;
  /** 'tensor count', 'length of key …', 'count of …', 'n_dims of …', 'dim 0 of …', 'type of …' … */
  what: string;
}

export interface EncodedGguf {
  header: Buffer;
  /** header.length padded to the alignment */
  dataOffset: number;
  /** bytes of tensor data, each tensor padded to the alignment */
  dataSize: number;
  alignment: number;
  /** the offsets written, relative to dataOffset */
  tensorOffsets: bigint[];
  fields: GgufField[];
}

/** Typed value helpers: kv.u32(5), kv.str('x'), kv.arr(GgufType.STRING, ['a', 'b']). */
export const kv = {
  u8: (v: number): GgufKv => ({ type: GgufType.UINT8, value: v }),
  i8: (v: number): GgufKv => ({ type: GgufType.INT8, value: v }),
  u16: (v: number): GgufKv => ({ type: GgufType.UINT16, value: v }),
  i16: (v: number): GgufKv => ({ type: GgufType.INT16, value: v }),
  u32: (v: number): GgufKv => ({ type: GgufType.UINT32, value: v }),
  i32: (v: number): GgufKv => ({ type: GgufType.INT32, value: v }),
  f32: (v: number): GgufKv => ({ type: GgufType.FLOAT32, value: v }),
  bool: (v: boolean): GgufKv => ({ type: GgufType.BOOL, value: v }),
  str: (v: string): GgufKv => ({ type: GgufType.STRING, value: v }),
  u64: (v: bigint): GgufKv => ({ type: GgufType.UINT64, value: v }),
  i64: (v: bigint): GgufKv => ({ type: GgufType.INT64, value: v }),
  f64: (v: number): GgufKv => ({ type: GgufType.FLOAT64, value: v }),
  arr: (elementType: GgufType, items: GgufValue[]): GgufKv => ({ type: GgufType.ARRAY, value: { elementType, items } }),
};

/** An array value, for nesting: kv.arr(GgufType.ARRAY, [arr(GgufType.INT32, [1, 2])]). */
export function arr(elementType: GgufType, items: GgufValue[]): GgufArray {
  return { elementType, items };
}

class Out {
  private chunks: Buffer[] = [];
  length = 0;
  readonly fields: GgufField[] = [];
  constructor(private readonly be: boolean) {}
  raw(b: Buffer): void {
    this.chunks.push(b);
    this.length += b.length;
  }
  private num(size: number, write: (b: Buffer) => void): void {
    const b = Buffer.alloc(size);
    write(b);
    this.raw(b);
  }
  u8(v: number): void {
    this.num(1, (b) => b.writeUInt8(v));
  }
  i8(v: number): void {
    this.num(1, (b) => b.writeInt8(v));
  }
  u16(v: number): void {
    this.num(2, (b) => (this.be ? b.writeUInt16BE(v) : b.writeUInt16LE(v)));
  }
  i16(v: number): void {
    this.num(2, (b) => (this.be ? b.writeInt16BE(v) : b.writeInt16LE(v)));
  }
  u32(v: number, what?: string): void {
    if (what) this.fields.push({ at: this.length, size: 4, what });
    this.num(4, (b) => (this.be ? b.writeUInt32BE(v) : b.writeUInt32LE(v)));
  }
  i32(v: number): void {
    this.num(4, (b) => (this.be ? b.writeInt32BE(v) : b.writeInt32LE(v)));
  }
  f32(v: number): void {
    this.num(4, (b) => (this.be ? b.writeFloatBE(v) : b.writeFloatLE(v)));
  }
  u64(v: bigint, what?: string): void {
    if (what) this.fields.push({ at: this.length, size: 8, what });
    this.num(8, (b) => (this.be ? b.writeBigUInt64BE(v) : b.writeBigUInt64LE(v)));
  }
  i64(v: bigint): void {
    this.num(8, (b) => (this.be ? b.writeBigInt64BE(v) : b.writeBigInt64LE(v)));
  }
  f64(v: number): void {
    this.num(8, (b) => (this.be ? b.writeDoubleBE(v) : b.writeDoubleLE(v)));
  }
  str(s: string, what: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(BigInt(b.length), `length of ${what}`);
    this.raw(b);
  }
  done(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }
}

function writeValue(out: Out, type: GgufType, v: GgufValue, what: string): void {
  switch (type) {
    case GgufType.UINT8:
      return out.u8(v as number);
    case GgufType.INT8:
      return out.i8(v as number);
    case GgufType.UINT16:
      return out.u16(v as number);
    case GgufType.INT16:
      return out.i16(v as number);
    case GgufType.UINT32:
      return out.u32(v as number);
    case GgufType.INT32:
      return out.i32(v as number);
    case GgufType.FLOAT32:
      return out.f32(v as number);
    case GgufType.BOOL:
      return out.u8(v ? 1 : 0);
    case GgufType.STRING:
      return out.str(v as string, what);
    case GgufType.UINT64:
      return out.u64(v as bigint);
    case GgufType.INT64:
      return out.i64(v as bigint);
    case GgufType.FLOAT64:
      return out.f64(v as number);
    case GgufType.ARRAY: {
      const a = v as GgufArray;
      out.u32(a.elementType, `element type of ${what}`);
      out.u64(BigInt(a.items.length), `count of ${what}`);
      a.items.forEach((item, i) => writeValue(out, a.elementType, item, `${what}[${i}]`));
      return;
    }
  }
}

/** Bytes of a tensor's data by the ggml type table (0 for an unknown type). */
export function tensorBytes(t: { dims: number[]; type: number }): number {
  const info = GGML_TYPES.get(t.type);
  if (!info) return 0;
  const elements = t.dims.reduce((a, b) => a * b, 1);
  return (elements / info.blockSize) * info.typeSize;
}

/** The header bytes (padding included) and its layout. */
export function encodeGguf(spec: GgufWriteSpec): EncodedGguf {
  const out = new Out(spec.bigEndian ?? false);
  const metadata = [...(spec.metadata ?? [])];
  const tensors = spec.tensors ?? [];
  const alignKv = metadata.find(([k]) => k === 'general.alignment')?.[1];
  const declared = alignKv && alignKv.type === GgufType.UINT32 ? (alignKv.value as number) : 32;
  // an invalid alignment (for corruption tests) is written as declared, the padding stays 32
  const alignment = declared > 0 && (declared & (declared - 1)) === 0 ? declared : 32;
  const pad = (n: number): number => Math.ceil(n / alignment) * alignment;

  out.raw(Buffer.from('GGUF', 'latin1'));
  out.u32(spec.version ?? 3, 'version');
  out.u64(spec.tensorCount ?? BigInt(tensors.length), 'tensor count');
  out.u64(spec.kvCount ?? BigInt(metadata.length), 'metadata count');
  for (const [key, { type, value }] of metadata) {
    out.str(key, `key ${key}`);
    out.u32(type, `type of ${key}`);
    writeValue(out, type, value, key);
  }
  const tensorOffsets: bigint[] = [];
  let next = 0;
  for (const t of tensors) {
    const offset = t.offset === undefined ? BigInt(next) : BigInt(t.offset);
    tensorOffsets.push(offset);
    next = Number(offset) + pad(tensorBytes(t));
    out.str(t.name, `tensor ${t.name}`);
    out.u32(t.dims.length, `n_dims of ${t.name}`);
    t.dims.forEach((d, i) => out.u64(BigInt(d), `dim ${i} of ${t.name}`));
    out.u32(t.type, `type of tensor ${t.name}`);
    out.u64(offset, `offset of ${t.name}`);
  }
  const headerLength = out.length;
  const dataOffset = pad(headerLength);
  out.raw(Buffer.alloc(dataOffset - headerLength));
  return { header: out.done(), dataOffset, dataSize: next, alignment, tensorOffsets, fields: out.fields };
}

/** Real tensor bytes for writeGguf: one buffer per tensor, or a function giving tensor i's bytes. */
export type GgufTensorData = Buffer[] | ((tensor: GgufWriteTensor, index: number) => Buffer);

/**
 * Writes a GGUF file: the header, then the tensor data as a hole (ftruncate to its full size), or
 * nothing with data: 'none', or real bytes (each tensor's at its offset, padded to the alignment;
 * the length must match the tensor's type and dims). Returns the layout and the file size.
 */
export async function writeGguf(
  path: string,
  spec: GgufWriteSpec,
  opts: { data?: 'sparse' | 'none' | GgufTensorData } = {},
): Promise<EncodedGguf & { fileSize: number }> {
  const enc = encodeGguf(spec);
  const data = opts.data;
  const fh = await open(path, 'w');
  try {
    await fh.writeFile(enc.header);
    if (data !== undefined && typeof data !== 'string') {
      const tensors = spec.tensors ?? [];
      for (const [i, t] of tensors.entries()) {
        const bytes = typeof data === 'function' ? data(t, i) : data[i];
        if (!bytes || bytes.length !== tensorBytes(t)) {
          throw new Error(`tensor ${t.name}: ${bytes?.length ?? 'no'} bytes of data, expected ${tensorBytes(t)}`);
        }
        await fh.write(bytes, 0, bytes.length, enc.dataOffset + Number(enc.tensorOffsets[i]));
      }
    }
    const fileSize = data === 'none' ? enc.header.length : enc.dataOffset + enc.dataSize;
    await fh.truncate(fileSize);
    return { ...enc, fileSize };
  } finally {
    await fh.close();
  }
}

/** Header bytes of encodeGguf at the size of a real file (header + sparse data). */
export async function writeBytes(path: string, bytes: Uint8Array, size = bytes.length): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.writeFile(bytes);
    if (size !== bytes.length) await fh.truncate(size);
  } finally {
    await fh.close();
  }
}

/** A small llama-like model: metadata of every kind, a tokenizer, 2 blocks of tensors. */
export function sampleModel(opts: { version?: number; fileType?: number | null; types?: { weight: number; norm: number; output?: number } } = {}): GgufWriteSpec {
  const weight = opts.types?.weight ?? 12; // Q4_K
  const norm = opts.types?.norm ?? 0; // F32
  const output = opts.types?.output ?? 14; // Q6_K
  const tokens = Array.from({ length: 300 }, (_, i) => (i < 3 ? ['<unk>', '<s>', '</s>'][i]! : `tok${i}`));
  const metadata: Array<[string, GgufKv]> = [
    ['general.architecture', kv.str('llama')],
    ['general.name', kv.str('Tiny Llama Test')],
    ['general.quantization_version', kv.u32(2)],
    ['llama.context_length', kv.u32(4096)],
    ['llama.embedding_length', kv.u32(256)],
    ['llama.block_count', kv.u32(2)],
    ['llama.rope.freq_base', kv.f32(10000)],
    ['llama.attention.layer_norm_rms_epsilon', kv.f32(0.000009999999747378752)],
    ['tokenizer.ggml.model', kv.str('llama')],
    ['tokenizer.ggml.tokens', kv.arr(GgufType.STRING, tokens)],
    ['tokenizer.ggml.scores', kv.arr(GgufType.FLOAT32, tokens.map((_, i) => -i / 2))],
    ['tokenizer.ggml.token_type', kv.arr(GgufType.INT32, tokens.map((_, i) => (i < 3 ? 3 : 1)))],
    ['tokenizer.ggml.bos_token_id', kv.u32(1)],
    ['tokenizer.ggml.add_bos_token', kv.bool(true)],
  ];
  if (opts.fileType !== null) metadata.splice(3, 0, ['general.file_type', kv.u32(opts.fileType ?? 15)]);
  const tensors: GgufWriteTensor[] = [{ name: 'token_embd.weight', dims: [256, 300], type: weight }];
  for (let b = 0; b < 2; b++) {
    tensors.push({ name: `blk.${b}.attn_norm.weight`, dims: [256], type: norm });
    for (const w of ['attn_q', 'attn_k', 'attn_v', 'attn_output']) tensors.push({ name: `blk.${b}.${w}.weight`, dims: [256, 256], type: weight });
    tensors.push({ name: `blk.${b}.ffn_norm.weight`, dims: [256], type: norm });
    for (const w of ['ffn_gate', 'ffn_up']) tensors.push({ name: `blk.${b}.${w}.weight`, dims: [256, 512], type: weight });
    tensors.push({ name: `blk.${b}.ffn_down.weight`, dims: [512, 256], type: output });
  }
  tensors.push({ name: 'output_norm.weight', dims: [256], type: norm });
  tensors.push({ name: 'output.weight', dims: [256, 300], type: output });
  return { version: opts.version ?? 3, metadata, tensors };
}

/** Every value type, edge values, empty and nested arrays (4 levels, mixed inner types). */
export function allTypesMetadata(): Array<[string, GgufKv]> {
  return [
    ['general.architecture', kv.str('testarch')],
    ['t.u8', kv.u8(255)],
    ['t.u8.zero', kv.u8(0)],
    ['t.i8', kv.i8(-128)],
    ['t.u16', kv.u16(65535)],
    ['t.i16', kv.i16(-32768)],
    ['t.u32', kv.u32(4294967295)],
    ['t.i32', kv.i32(-2147483648)],
    ['t.f32', kv.f32(1.5)],
    ['t.f32.neg_zero', kv.f32(-0)],
    ['t.f32.nan', kv.f32(NaN)],
    ['t.f32.inf', kv.f32(-Infinity)],
    ['t.bool.true', kv.bool(true)],
    ['t.bool.false', kv.bool(false)],
    ['t.str', kv.str('héllo ✓ 日本語 🦙')],
    ['t.str.empty', kv.str('')],
    ['t.u64', kv.u64(18446744073709551615n)],
    ['t.u64.small', kv.u64(42n)],
    ['t.i64', kv.i64(-9223372036854775808n)],
    ['t.f64', kv.f64(Math.PI)],
    ['t.arr.u8', kv.arr(GgufType.UINT8, [0, 1, 255])],
    ['t.arr.i8', kv.arr(GgufType.INT8, [-128, 0, 127])],
    ['t.arr.u16', kv.arr(GgufType.UINT16, [0, 65535])],
    ['t.arr.i16', kv.arr(GgufType.INT16, [-32768, 32767])],
    ['t.arr.u32', kv.arr(GgufType.UINT32, [0, 4294967295])],
    ['t.arr.i32', kv.arr(GgufType.INT32, [-1, 2147483647])],
    ['t.arr.f32', kv.arr(GgufType.FLOAT32, [0.25, -2, 1e10])],
    ['t.arr.bool', kv.arr(GgufType.BOOL, [true, false, true])],
    ['t.arr.str', kv.arr(GgufType.STRING, ['a', '', 'ü'])],
    ['t.arr.u64', kv.arr(GgufType.UINT64, [0n, 18446744073709551615n])],
    ['t.arr.i64', kv.arr(GgufType.INT64, [-1n, 9223372036854775807n])],
    ['t.arr.f64', kv.arr(GgufType.FLOAT64, [Math.E, -0.5])],
    ['t.arr.empty', kv.arr(GgufType.UINT32, [])],
    ['t.arr.nested', kv.arr(GgufType.ARRAY, [arr(GgufType.INT32, [1, 2]), arr(GgufType.STRING, ['x']), arr(GgufType.ARRAY, [])])],
    [
      't.arr.deep',
      kv.arr(GgufType.ARRAY, [arr(GgufType.ARRAY, [arr(GgufType.ARRAY, [arr(GgufType.UINT8, [7]), arr(GgufType.BOOL, [false])])])]),
    ],
    ['t.arr.long', kv.arr(GgufType.UINT16, Array.from({ length: 100 }, (_, i) => i))],
  ];
}
