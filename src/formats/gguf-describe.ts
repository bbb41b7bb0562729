/**
 * What a GGUF header says about its model (architecture, parameter count, llama.cpp's file type
 * name, context length, split keys) and its metadata made JSON-safe, for one file or the shards
 * of one model. Pure: works on headers readGgufHeader returned.
 */
import { PackError } from '../errors.js';
import { formatParamCount } from './param-size.js';
import { fileTypeName, guessedFileTypeName } from './gguf-types.js';
import { ggufTypeName, type GgufKv, type GgufTypeName, type GgufValue } from './gguf-value.js';
import type { GgufHeader, GgufTensorInfo } from './gguf.js';
import { CORRUPT_HINT } from './gguf-reader.js';

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
  // split.count comes from the file (up to 2^53): count what is missing, list only the first ten
  const missingCount = first!.count - bySplit.size;
  if (missingCount > 0) {
    const missing: number[] = [];
    for (let no = 0; no < first!.count && missing.length < 10; no++) if (!bySplit.has(no)) missing.push(no + 1);
    throw new PackError('NOT_FOUND', `${headers[0]!.path}: shard${missingCount > 1 ? 's' : ''} ${missing.join(', ')}${missingCount > 10 ? ', …' : ''} of ${first!.count} missing`, {
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

export interface GgufSetDescription {
  /** The shard holding the model's keys (split.no 0), else the first header. */
  first: GgufHeader;
  description: GgufDescription;
  /** Why the headers are not one whole model (describeGgufShards refused them): `description` is then the first shard's alone. */
  problem?: PackError;
}

/** One file, or a shard set: describeGguf, or describeGgufShards when there are several (or split keys). Never throws a PackError. */
export function describeGgufSet(headers: readonly GgufHeader[], opts: DescribeOptions = {}): GgufSetDescription {
  if (headers.length === 0) throw new TypeError('describeGgufSet: no headers');
  const first = headers.find((h) => h.metadata.get('split.no')?.value === 0) ?? headers[0]!;
  const description = describeGguf(first, opts);
  if (headers.length === 1 && !description.split) return { first, description };
  try {
    return { first, description: describeGgufShards(headers, opts) };
  } catch (e) {
    if (!(e instanceof PackError)) throw e;
    return { first, description, problem: e };
  }
}
