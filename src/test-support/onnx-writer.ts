/**
 * Test helper: a small ONNX model (a protobuf ModelProto) encoded by hand, field by field, as
 * onnx.proto defines it. Checked against Debian's python3-onnx (onnx.checker) in onnx.test.ts when
 * that is installed.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface OnnxModelSpec {
  /** Default 8 (what onnx 1.12 writes). */
  irVersion?: number;
  /** Default 'mpk-test'; null leaves the field out. */
  producerName?: string | null;
  producerVersion?: string;
  domain?: string;
  modelVersion?: number;
  docString?: string;
  /** Default [{ domain: '', version: 17 }]. */
  opsetImports?: Array<{ domain?: string; version: number }>;
  /** A graph `y = x + w` over float[n]; `initializerBytes` (a multiple of 4) sizes w's raw data. false: no graph. */
  graph?: false | { name?: string; initializerBytes?: number };
  metadataProps?: Record<string, string>;
  /** Put opset_import right after ir_version, before the graph (protobuf writers put it after). */
  opsetFirst?: boolean;
}

// Protobuf wire format ---------------------------------------------------------------------------

export function varint(value: number | bigint): Buffer {
  let v = BigInt(value);
  if (v < 0n) v += 1n << 64n; // int64 two's complement, as protobuf encodes negative int64
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return Buffer.from(out);
}

export function tag(field: number, wire: number): Buffer {
  return varint(field * 8 + wire);
}

export function varintField(field: number, value: number | bigint): Buffer {
  return Buffer.concat([tag(field, 0), varint(value)]);
}

export function bytesField(field: number, payload: Uint8Array | string): Buffer {
  const b = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : Buffer.from(payload);
  return Buffer.concat([tag(field, 2), varint(b.length), b]);
}

// ONNX messages ----------------------------------------------------------------------------------

const FLOAT = 1; // TensorProto.DataType.FLOAT

function valueInfo(name: string, n: number): Buffer {
  const dim = bytesField(1, varintField(1, n)); // TensorShapeProto.dim { dim_value }
  const tensorType = Buffer.concat([varintField(1, FLOAT), bytesField(2, dim)]); // elem_type, shape
  const type = bytesField(1, tensorType); // TypeProto.tensor_type
  return Buffer.concat([bytesField(1, name), bytesField(2, type)]); // ValueInfoProto name, type
}

export function encodeOnnxGraph(opts: { name?: string; initializerBytes?: number } = {}): Buffer {
  const bytes = opts.initializerBytes ?? 16;
  if (bytes % 4 !== 0 || bytes <= 0) throw new Error('test writer: initializerBytes must be a positive multiple of 4');
  const n = bytes / 4;
  const raw = Buffer.alloc(bytes);
  for (let i = 0; i < n; i++) raw.writeFloatLE(i / 2, i * 4);
  const node = Buffer.concat([bytesField(1, 'x'), bytesField(1, 'w'), bytesField(2, 'y'), bytesField(3, 'add0'), bytesField(4, 'Add')]);
  const init = Buffer.concat([varintField(1, n), varintField(2, FLOAT), bytesField(8, 'w'), bytesField(9, raw)]);
  return Buffer.concat([
    bytesField(1, node), // GraphProto.node
    bytesField(2, opts.name ?? 'g'), // name
    bytesField(5, init), // initializer
    bytesField(11, valueInfo('x', n)), // input
    bytesField(12, valueInfo('y', n)), // output
  ]);
}

/** The bytes of a ModelProto. */
export function encodeOnnxModel(spec: OnnxModelSpec = {}): Buffer {
  const opsets = (spec.opsetImports ?? [{ domain: '', version: 17 }]).map((o) =>
    bytesField(8, Buffer.concat([...(o.domain !== undefined ? [bytesField(1, o.domain)] : []), varintField(2, o.version)])),
  );
  const parts: Buffer[] = [varintField(1, spec.irVersion ?? 8)];
  if (spec.opsetFirst) parts.push(...opsets);
  const producer = spec.producerName === undefined ? 'mpk-test' : spec.producerName;
  if (producer !== null) parts.push(bytesField(2, producer));
  if (spec.producerVersion !== undefined) parts.push(bytesField(3, spec.producerVersion));
  if (spec.domain !== undefined) parts.push(bytesField(4, spec.domain));
  if (spec.modelVersion !== undefined) parts.push(varintField(5, spec.modelVersion));
  if (spec.docString !== undefined) parts.push(bytesField(6, spec.docString));
  if (spec.graph !== false) parts.push(bytesField(7, encodeOnnxGraph(spec.graph ?? {})));
  if (!spec.opsetFirst) parts.push(...opsets);
  for (const [k, v] of Object.entries(spec.metadataProps ?? {})) {
    parts.push(bytesField(14, Buffer.concat([bytesField(1, k), bytesField(2, v)])));
  }
  return Buffer.concat(parts);
}

export async function writeOnnxModel(path: string, spec: OnnxModelSpec = {}): Promise<Buffer> {
  const bytes = encodeOnnxModel(spec);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, bytes);
  return bytes;
}
