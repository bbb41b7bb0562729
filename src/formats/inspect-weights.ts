/**
 * One description of a model's weights, read from their headers only (a GGUF header, a
 * safetensors JSON header, an ONNX file's first fields; never tensor data, so a 40 GB file costs
 * milliseconds): format, architecture, parameter count, precision, quantization, context length,
 * and for GGUF the header's metadata (large arrays and strings summarised).
 *
 * - Each file's format comes from its content where a reader knows it (`.gguf`, `.safetensors` and
 *   `.onnx` are read by their reader; other files are sniffed, the 16 largest), else from its name
 *   (`.bin`/`.pt` → pytorch, …). The format holding the most bytes is described; when several
 *   share the weights a warning says which one was chosen. Bytes of no known format can win, and
 *   then nothing is described.
 * - GGUF: shards (`NAME-00001-of-00003.gguf`) form one model, checked by their split.* keys;
 *   several GGUF models (other than projectors, `*mmproj*`) → the largest, with a warning.
 * - safetensors: a directory's `model.safetensors.index.json` says which files are the model
 *   (others beside it, such as Mistral's `consolidated.safetensors`, are not counted); without an
 *   index every file counts. Parameters are summed over all of them.
 * - A file its reader refuses (corrupt, truncated, unsupported version) is a warning naming the file
 *   and the reason; it is still packaged, nothing is inferred from it, and a parameter count that
 *   would miss it is left out. Only errors that are not PackErrors (bugs) are thrown.
 */
import { readdir } from 'node:fs/promises';
import { basename, dirname, join, sep } from 'node:path';
import { PackError } from '../errors.js';
import { mapBounded } from '../internal/map-bounded.js';
import { detectModelFormat } from './detect.js';
import { readGgufHeader, type GgufHeader } from './gguf.js';
import { describeGgufSet } from './gguf-describe.js';
import { ggufMetadata, type GgufMetadata } from './gguf-metadata.js';
import { sniffOnnx } from './onnx.js';
import { readSafetensorsHeader, type SafetensorsHeader } from './safetensors.js';
import { describeSafetensors, type SafetensorsDescription } from './safetensors-describe.js';
import { readSafetensorsModel } from './safetensors-model.js';

export interface WeightFile {
  /** The path the Modelfile and the manifest give it (relative to the build context). */
  path: string;
  absPath: string;
  size: number;
}

export interface FormatShare {
  /** undefined: bytes of no format mpk knows */
  format: string | undefined;
  files: number;
  bytes: number;
}

export interface WeightsDescription {
  format?: string;
  /** GGUF `general.architecture` (llama, qwen2, …), or safetensors `__metadata__.architecture` */
  architecture?: string;
  /** GGUF `general.architecture`: the same word model_type gives a Hugging Face model's family */
  family?: string;
  parameterCount?: number;
  /** `7.24B` */
  paramSize?: string;
  /** ModelPack words: float16, bfloat16, … */
  precision?: string;
  /** Q4_K_M, gptq, …; for GGUF only when the file type is a quantized one */
  quantization?: string;
  /** GGUF: llama.cpp's file type name, float ones included (F16, BF16, Q4_K_M, …) */
  fileType?: string;
  contextLength?: number;
  /** GGUF only: the (first shard's) header metadata, bounded (gguf-metadata.ts) */
  ggufMetadata?: GgufMetadata;
  /** The files the fields come from, in path order. */
  source: string[];
  /** Bytes per format, largest first. */
  formats: FormatShare[];
  warnings: string[];
  /** Files whose first bytes or header were read. */
  headersRead: number;
}

/** Files whose names name no format are sniffed, the largest first, up to this many. */
const MAX_SNIFFED = 16;
const ORDER = ['gguf', 'safetensors', 'onnx'];
const SHARD = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/i;
const FLOAT_FILE_TYPES: Readonly<Record<string, string>> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16', F64: 'float64' };

/** The format a file name implies: gguf, safetensors, onnx, pytorch, tflite, keras; else undefined. */
export function formatByName(name: string): string | undefined {
  const l = basename(name).toLowerCase();
  if (l.endsWith('.safetensors')) return 'safetensors';
  if (l.endsWith('.gguf') || /\.gguf\./.test(l)) return 'gguf';
  if (l.endsWith('.onnx') || l.includes('.onnx_data')) return 'onnx';
  if (/\.(pt|pth|bin)$/.test(l)) return 'pytorch';
  if (l.endsWith('.tflite')) return 'tflite';
  if (l.endsWith('.h5') || l.endsWith('.keras')) return 'keras';
  return undefined;
}

export async function describeWeights(files: readonly WeightFile[]): Promise<WeightsDescription> {
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const out: WeightsDescription = { source: [], formats: [], warnings: [], headersRead: 0 };
  const refused = (f: WeightFile, e: unknown) => out.warnings.push(refusal(f, e));

  // Each file's format: a reader's by name; otherwise by content (the largest few), else by name.
  const format = new Map<WeightFile, string | undefined>(sorted.map((f) => [f, formatByName(f.path)]));
  const sniffed = sorted.filter((f) => !ORDER.includes(format.get(f) ?? '')).sort((a, b) => b.size - a.size).slice(0, MAX_SNIFFED);
  await mapBounded(sniffed, async (f) => {
    out.headersRead++;
    try {
      const found = await detectModelFormat(f.absPath);
      if (found !== undefined) format.set(f, found);
    } catch (e) {
      if (!(e instanceof PackError)) throw e;
    }
  }, 4);

  const shares = new Map<string | undefined, FormatShare>();
  for (const f of sorted) {
    const k = format.get(f);
    const s = shares.get(k) ?? shares.set(k, { format: k, files: 0, bytes: 0 }).get(k)!;
    s.files++;
    s.bytes += f.size;
  }
  const rank = (f: string | undefined) => (f === undefined ? 99 : ORDER.includes(f) ? ORDER.indexOf(f) : 10);
  out.formats = [...shares.values()].sort((a, b) => b.bytes - a.bytes || rank(a.format) - rank(b.format) || String(a.format).localeCompare(String(b.format)));
  const top = out.formats[0];
  if (!top) return out;
  if (out.formats.length > 1) {
    const list = out.formats.map((s) => `${s.format ?? 'unknown'} (${s.files} file${s.files === 1 ? '' : 's'}, ${bytes(s.bytes)})`).join(', ');
    out.warnings.push(
      top.format === undefined
        ? `weights in several formats: ${list}; most bytes are of no format mpk knows, so FORMAT and the model's fields are not inferred`
        : `weights in several formats: ${list}; the fields describe the ${top.format} ones, which hold the most bytes`,
    );
  }
  const of = (f: string) => sorted.filter((x) => format.get(x) === f);
  // Every file a reader knows is read (so a damaged one is reported), the chosen format's described.
  const gguf = await describeGgufFiles(of('gguf'), top.format === 'gguf', out, refused);
  const st = await describeSafetensorsFiles(of('safetensors'), top.format === 'safetensors', out, refused);
  await checkOnnx(of('onnx'), out, refused);
  if (top.format === undefined) return out;
  out.format = top.format;
  Object.assign(out, top.format === 'gguf' ? gguf : top.format === 'safetensors' ? st : { source: of(top.format).map((f) => f.path) });
  return out;
}

type Fields = Partial<Pick<WeightsDescription, 'architecture' | 'family' | 'parameterCount' | 'paramSize' | 'precision' | 'quantization' | 'fileType' | 'contextLength' | 'ggufMetadata' | 'source'>>;
type Refused = (f: WeightFile, e: unknown) => void;

async function describeGgufFiles(files: WeightFile[], wanted: boolean, out: WeightsDescription, refused: Refused): Promise<Fields> {
  out.headersRead += files.length;
  const headers = await readAll(files, readGgufHeader, refused, 2);
  if (!wanted || files.length === 0) return {};
  // Shards by name form one model; every other file is a model of its own.
  const units = new Map<string, number[]>();
  files.forEach((f, i) => {
    const m = SHARD.exec(f.path);
    const key = m ? `${m[1]}\0${m[3]}` : f.path;
    (units.get(key) ?? units.set(key, []).get(key)!).push(i);
  });
  const size = (u: number[]) => u.reduce((n, i) => n + files[i]!.size, 0);
  const all = [...units.values()].sort((a, b) => size(b) - size(a));
  // The largest model describes them, never a projector (which may be larger than a small model).
  const main = all.find((u) => !/mmproj/i.test(files[u[0]!]!.path)) ?? all[0]!;
  const label = (u: number[]) => files[u[0]!]!.path + (u.length > 1 ? ` (${u.length} shards)` : '');
  if (all.some((u) => u !== main && !/mmproj/i.test(files[u[0]!]!.path))) {
    out.warnings.push(`${all.length} GGUF models (${all.slice(0, 4).map(label).join(', ')}${all.length > 4 ? ', …' : ''}): the fields describe the largest, ${label(main)}`);
  }
  const fields: Fields = { source: main.map((i) => files[i]!.path) };
  const hs = main.map((i) => headers[i]);
  if (hs.some((h) => h === undefined)) return fields;
  const { first, description: d, problem } = describeGgufSet(hs as GgufHeader[]);
  if (problem) out.warnings.push(`${relMessage(problem.message, files[main[0]!]!)}; the parameter count is left out`);
  const counted = !problem;
  if (d.architecture !== undefined) fields.architecture = fields.family = d.architecture;
  if (counted) [fields.parameterCount, fields.paramSize] = [d.parameterCount, d.parameterSize];
  if (d.quantization !== undefined) {
    fields.fileType = d.quantization;
    const precision = FLOAT_FILE_TYPES[d.quantization];
    if (precision) fields.precision = precision;
    else fields.quantization = d.quantization;
  }
  if (d.contextLength !== undefined) fields.contextLength = d.contextLength;
  fields.ggufMetadata = ggufMetadata(first);
  return fields;
}

async function describeSafetensorsFiles(files: WeightFile[], wanted: boolean, out: WeightsDescription, refused: Refused): Promise<Fields> {
  if (files.length === 0) return {};
  const byAbs = new Set(files.map((f) => f.absPath));
  let rest = files; // files no index accounts for
  const used: WeightFile[] = []; // the files the description covers
  const described: Array<{ headers: SafetensorsHeader[]; description: SafetensorsDescription }> = [];
  // A directory's index says which files are the model.
  for (const dir of [...new Set(files.map((f) => dirname(f.absPath)))]) {
    const index = await findIndex(dir);
    if (index === undefined) continue;
    const inDir = files.filter((f) => dirname(f.absPath) === dir);
    try {
      const model = await readSafetensorsModel(index);
      out.headersRead += model.files.length;
      const missing = model.files.filter((p) => !byAbs.has(p));
      if (missing.length > 0) {
        const names = missing.map((p) => basename(p)).slice(0, 3).join(', ') + (missing.length > 3 ? ', …' : '');
        out.warnings.push(`${basename(index)} names ${names}, which ${missing.length === 1 ? 'is' : 'are'} not packaged: every .safetensors file beside it is counted instead`);
        continue;
      }
      out.warnings.push(...model.warnings.map((w) => relMessage(w, inDir[0]!)));
      described.push({ headers: model.headers, description: model.description });
      const shards = new Set(model.files);
      rest = rest.filter((f) => !inDir.includes(f));
      for (const f of inDir) {
        if (shards.has(f.absPath)) used.push(f);
        else out.warnings.push(`${f.path} is not in ${basename(index)}: not counted in the model's parameters`);
      }
    } catch (e) {
      if (!(e instanceof PackError)) throw e;
      out.warnings.push(`${relMessage(e.message, inDir[0]!)} (every .safetensors file beside it is counted instead)`);
    }
  }
  out.headersRead += rest.length;
  const headers = await readAll(rest, readSafetensorsHeader, refused, 4);
  const good = headers.filter((h): h is SafetensorsHeader => h !== undefined);
  if (good.length > 0) described.push({ headers: good, description: describeSafetensors(good) });
  used.push(...rest.filter((_, i) => headers[i] !== undefined));
  if (!wanted || described.length === 0) return { source: files.map((f) => f.path) };
  const allHeaders = described.flatMap((d) => d.headers);
  const d = described.length === 1 ? described[0]!.description : describeSafetensors(allHeaders);
  const fields: Fields = { source: used.map((f) => f.path).sort() };
  if (good.length === headers.length) [fields.parameterCount, fields.paramSize] = [d.parameterCount, d.parameterSize];
  if (d.precision !== undefined) fields.precision = d.precision;
  if (d.quantization !== undefined) fields.quantization = d.quantization;
  const arch = allHeaders.map((h) => h.metadata?.architecture).find((a) => typeof a === 'string' && a !== '');
  if (arch !== undefined) fields.architecture = arch;
  return fields;
}

/** `model.safetensors.index.json`, else the directory's only `*.safetensors.index.json`. */
async function findIndex(dir: string): Promise<string | undefined> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const indexes = names.filter((n) => n.endsWith('.safetensors.index.json')).sort();
  if (indexes.includes('model.safetensors.index.json')) return join(dir, 'model.safetensors.index.json');
  return indexes.length === 1 ? join(dir, indexes[0]!) : undefined;
}

async function checkOnnx(files: WeightFile[], out: WeightsDescription, refused: Refused): Promise<void> {
  const graphs = files.filter((f) => f.path.toLowerCase().endsWith('.onnx'));
  out.headersRead += graphs.length;
  await readAll(graphs, async (path) => {
    const info = await sniffOnnx(path);
    if (info === undefined) throw new PackError('CORRUPT', `${path}: not a valid ONNX model (its first fields are not an ONNX ModelProto)`);
    return info;
  }, refused, 4);
}

/** Reads every file (at most `limit` at once); a PackError is reported in file order and gives undefined. */
async function readAll<R>(files: WeightFile[], read: (path: string) => Promise<R>, refused: Refused, limit: number): Promise<Array<R | undefined>> {
  const results = await mapBounded(files, async (f) => {
    try {
      return { ok: await read(f.absPath) };
    } catch (e) {
      if (!(e instanceof PackError)) throw e;
      return { error: e };
    }
  }, limit);
  return results.map((r, i) => {
    if ('error' in r) refused(files[i]!, r.error);
    return 'ok' in r ? r.ok : undefined;
  });
}

function refusal(f: WeightFile, e: unknown): string {
  if (!(e instanceof PackError)) throw e;
  return `${relMessage(e.message, f)} (packaged as it is; nothing is inferred from it)`;
}

/** Readers name absolute paths; the user knows the files by their paths in the model (`beside`'s directory). */
function relMessage(message: string, beside: WeightFile): string {
  const absDir = dirname(beside.absPath);
  const relDir = dirname(beside.path);
  return message.split(`${absDir}${sep}`).join(relDir === '.' ? '' : `${relDir}/`);
}

function bytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) [v, u] = [v / 1000, u + 1];
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}
