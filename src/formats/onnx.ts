/**
 * ONNX recognition. An ONNX model is a protobuf `ModelProto`: `ir_version` (field 1, varint),
 * `producer_name` (2), `producer_version` (3), `domain` (4), `model_version` (5), `doc_string` (6),
 * `graph` (7), `opset_import` (8, repeated `{domain = 1, version = 2}`), `metadata_props` (14),
 * `training_info` (20), `functions` (25), `configuration` (26). Serializers write fields in number
 * order, so `opset_import` usually comes after the graph, which holds the weights.
 *
 * `sniffOnnx` walks the top-level fields in bounded windows (64 KiB, at most 16 of them): small
 * fields are decoded, length-delimited ones it does not need (the graph above all) are skipped by
 * their length without being read. The walk must be well-formed protobuf to the exact end of the
 * file, with a plausible `ir_version` and a graph or an opset import; anything else is not ONNX.
 */
import type { FileHandle } from 'node:fs/promises';
import { openRegularFile, readAt } from '../internal/file-read.js';

export interface OnnxOpsetImport {
  /** As written: '' (or 'ai.onnx') is the default operator set. */
  domain: string;
  version: number;
}

export interface OnnxInfo {
  irVersion: number;
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: number;
  opsetImports: OnnxOpsetImport[];
  /** Bytes of the graph field (not read), when there is one. */
  graphBytes?: number;
}

const WINDOW = 64 * 1024;
const MAX_READS = 16;
/** ir_version is 1..11 today; anything far above is not an ONNX model. */
const MAX_IR_VERSION = 100;
const MAX_OPSETS = 1024;
/** Strings longer than this are skipped, not decoded. */
const MAX_STRING = 64 * 1024;

/** Field numbers of ModelProto and the wire type each must have (0 varint, 2 length-delimited). */
const MODEL_FIELDS: ReadonlyMap<number, number> = new Map([
  [1, 0], [2, 2], [3, 2], [4, 2], [5, 0], [6, 2], [7, 2], [8, 2], [14, 2], [20, 2], [25, 2], [26, 2],
]);

class NotOnnx extends Error {}
class OutOfBudget extends Error {}

/** Recognises an ONNX model by its first fields; undefined when the file is not one. Throws only for I/O. */
export async function sniffOnnx(path: string): Promise<OnnxInfo | undefined> {
  const { fh, st } = await openRegularFile(path);
  try {
    return await sniffOnnxHandle(fh, path, st.size);
  } finally {
    await fh.close().catch(() => {});
  }
}

/** As sniffOnnx, on an open file of `size` bytes. */
export async function sniffOnnxHandle(fh: FileHandle, path: string, size: number): Promise<OnnxInfo | undefined> {
  const src = new Windows(fh, path, size);
  try {
    return await walkModel(src, size);
  } catch (e) {
    if (e instanceof NotOnnx) return undefined;
    throw e;
  }
}

/** Bounded positioned reads over the file. */
class Windows {
  private buf: Buffer = Buffer.alloc(0);
  private start = 0;
  private reads = 0;
  constructor(
    private readonly fh: FileHandle,
    private readonly path: string,
    readonly size: number,
  ) {}

  /** Makes [pos, pos + n) (cut at the end of the file) available; returns the buffer and its offset. */
  async need(pos: number, n: number): Promise<{ buf: Buffer; at: number }> {
    const end = Math.min(pos + n, this.size);
    if (pos < this.start || end > this.start + this.buf.length) {
      if (this.reads >= MAX_READS) throw new OutOfBudget();
      this.reads++;
      this.buf = await readAt(this.fh, this.path, pos, Math.min(Math.max(n, WINDOW), this.size - pos));
      this.start = pos;
      if (this.start + this.buf.length < end) throw new NotOnnx(); // the file shrank
    }
    return { buf: this.buf, at: pos - this.start };
  }
}

async function walkModel(src: Windows, size: number): Promise<OnnxInfo | undefined> {
  if (size < 2) return undefined;
  let irVersion: number | undefined;
  let graphBytes: number | undefined;
  const info: Omit<OnnxInfo, 'irVersion'> = { opsetImports: [] };
  let pos = 0;
  let complete = true;
  try {
    while (pos < size) {
      const { buf, at } = await src.need(pos, 20);
      const r = new Reader(buf, at);
      const tag = r.varint();
      const field = Math.floor(tag / 8);
      const wire = tag % 8;
      if (field < 1 || field > 0x1fffffff) throw new NotOnnx();
      const expected = MODEL_FIELDS.get(field);
      if (expected !== undefined && expected !== wire) throw new NotOnnx();
      if (wire === 0) {
        const v = r.varint();
        if (field === 1) irVersion = v;
        if (field === 5 && Number.isSafeInteger(v)) info.modelVersion = v;
        pos += r.pos - at;
      } else if (wire === 1 || wire === 5) {
        pos += r.pos - at + (wire === 1 ? 8 : 4);
        if (pos > size) throw new NotOnnx();
      } else if (wire === 2) {
        const len = r.varint();
        const start = pos + (r.pos - at);
        if (start + len > size) throw new NotOnnx();
        pos = start + len;
        if (field === 7) graphBytes = len;
        else if ((field === 2 || field === 3 || field === 4) && len <= MAX_STRING) {
          const s = await readString(src, start, len);
          if (field === 2) info.producerName = s;
          else if (field === 3) info.producerVersion = s;
          else info.domain = s;
        } else if (field === 8) {
          if (len > MAX_STRING) throw new NotOnnx();
          const { buf: b, at: a } = await src.need(start, len);
          const op = parseOpset(b.subarray(a, a + len));
          if (info.opsetImports.length < MAX_OPSETS) info.opsetImports.push(op);
        }
        // Any other length-delimited field (doc_string, graph, functions, …) is skipped unread.
      } else {
        throw new NotOnnx(); // groups (3, 4) and reserved wire types (6, 7) never appear in ONNX
      }
    }
  } catch (e) {
    if (!(e instanceof OutOfBudget)) throw e;
    complete = false; // read enough: decide on what was seen
  }
  if (complete && pos !== size) throw new NotOnnx();
  if (irVersion === undefined || irVersion < 1 || irVersion > MAX_IR_VERSION) return undefined;
  if (graphBytes === undefined && info.opsetImports.length === 0) return undefined;
  const out: OnnxInfo = { irVersion, ...info };
  if (graphBytes !== undefined) out.graphBytes = graphBytes;
  return out;
}

async function readString(src: Windows, start: number, len: number): Promise<string> {
  const { buf, at } = await src.need(start, len);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(at, at + len));
  } catch {
    throw new NotOnnx();
  }
}

function parseOpset(bytes: Buffer): OnnxOpsetImport {
  const r = new Reader(bytes, 0);
  let domain = '';
  let version: number | undefined;
  while (r.pos < bytes.length) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    if (field < 1) throw new NotOnnx();
    if (field === 1 && wire === 2) {
      const len = r.varint();
      if (r.pos + len > bytes.length) throw new NotOnnx();
      try {
        domain = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(r.pos, r.pos + len));
      } catch {
        throw new NotOnnx();
      }
      r.pos += len;
    } else if (field === 2 && wire === 0) {
      version = r.varint();
    } else if (field === 1 || field === 2) {
      throw new NotOnnx();
    } else {
      r.skip(wire);
    }
  }
  if (version === undefined || !Number.isSafeInteger(version)) throw new NotOnnx();
  return { domain, version };
}

/** Protobuf primitives over a buffer; any malformation is NotOnnx. */
class Reader {
  constructor(
    private readonly buf: Buffer,
    public pos: number,
  ) {}

  /** A varint of at most 10 bytes, as a number (exact up to 2^53; larger values are only compared). */
  varint(): number {
    let v = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) throw new NotOnnx();
      const b = this.buf[this.pos++]!;
      v += (b & 0x7f) * scale;
      if (b < 0x80) return v;
      scale *= 128;
    }
    throw new NotOnnx();
  }

  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 5) this.pos += 4;
    else if (wire === 2) {
      const len = this.varint();
      this.pos += len;
    } else throw new NotOnnx();
    if (this.pos > this.buf.length) throw new NotOnnx();
  }
}
