/**
 * The single-value fields of a generated Modelfile, and the check of given values against what the
 * weights' headers say.
 *
 * Precedence, field by field: a value the user gave (option or Modelfile) > `config.json` (merged
 * with `generation_config.json`, as modctl reads them: `model_type` → FAMILY, `transformers_version`
 * → ARCH transformer, `torch_dtype` → PRECISION, `quantization_config.quant_method` → QUANTIZATION)
 * > the weights (describeWeights: FORMAT, ARCH/FAMILY from GGUF's general.architecture, PARAMSIZE
 * from the tensor shapes, PRECISION/QUANTIZATION from the tensor types).
 *
 * A user's FORMAT, PARAMSIZE (more than 25% off), PRECISION or QUANTIZATION that contradicts the
 * weights gives a warning naming both values; the user's value is kept. ARCH and FAMILY are not
 * checked: people name them at different levels (`transformer`, `llama3`) and none is wrong.
 */
import { join } from 'node:path';
import { hasErrorCode } from '../errors.js';
import { readSmallFile } from '../internal/file-read.js';
import type { WeightsDescription } from '../formats/inspect-weights.js';
import type { ModelFields } from './types.js';

export interface HfMeta {
  arch?: string;
  family?: string;
  precision?: string;
  quantization?: string;
}

/** config.json and generation_config.json are a few KB; larger ones are not read. */
const MAX_HF_CONFIG_BYTES = 16 * 1024 * 1024;

/** config.json then generation_config.json (later wins), as modctl reads them. */
export async function readHfConfig(dir: string, warnings: string[]): Promise<HfMeta> {
  const merged: Record<string, unknown> = {};
  for (const name of ['config.json', 'generation_config.json']) {
    let text: string;
    try {
      // never blocks on a FIFO, never reads a huge file whole
      const bytes = await readSmallFile(join(dir, name), MAX_HF_CONFIG_BYTES, { label: name, sizeHint: '', notFile: { code: 'UNSUPPORTED', hint: '' } });
      text = bytes.toString('utf8');
    } catch (e) {
      const why = hasErrorCode(e, 'SIZE_EXCEEDS_LIMIT') ? `over ${MAX_HF_CONFIG_BYTES / 1024 / 1024} MiB` : hasErrorCode(e, 'UNSUPPORTED') ? 'not a regular file' : undefined;
      if (why) warnings.push(`${name}: ${why}; family, architecture and precision not inferred from it`);
      continue;
    }
    try {
      const v = JSON.parse(text) as unknown;
      if (v && typeof v === 'object' && !Array.isArray(v)) Object.assign(merged, v);
    } catch (e) {
      warnings.push(`${name}: not valid JSON (${(e as Error).message}); family, architecture and precision not inferred from it`);
    }
  }
  const str = (v: unknown) => (typeof v === 'string' && v.length > 0 && v.length <= 256 ? v : undefined);
  const q = merged.quantization_config as Record<string, unknown> | undefined;
  const out: HfMeta = {};
  const set = (k: keyof HfMeta, v: string | undefined) => v !== undefined && (out[k] = v);
  set('family', str(merged.model_type));
  set('arch', merged.transformers_version !== undefined ? 'transformer' : undefined);
  set('precision', str(merged.torch_dtype) ?? str(merged.dtype));
  set('quantization', q && typeof q === 'object' ? str(q.quant_method) : undefined);
  return out;
}

/** The fields of a generated Modelfile, by the precedence above (NAME is the caller's). */
export function inferFields(given: ModelFields, hf: HfMeta, w: WeightsDescription | undefined): ModelFields {
  const out: ModelFields = {};
  const pick = (key: keyof ModelFields, ...vals: Array<string | undefined>) => {
    const v = vals.find((x) => x !== undefined && x !== '');
    if (v !== undefined) out[key] = v;
  };
  pick('arch', given.arch, hf.arch, w?.architecture);
  pick('family', given.family, hf.family, w?.family);
  pick('format', given.format, w?.format);
  pick('paramSize', given.paramSize, w?.paramSize);
  pick('precision', given.precision, hf.precision, w?.precision);
  pick('quantization', given.quantization, hf.quantization, w?.quantization);
  return out;
}

const KEYWORD = { format: 'FORMAT', paramSize: 'PARAMSIZE', precision: 'PRECISION', quantization: 'QUANTIZATION' } as const;
type Checked = keyof typeof KEYWORD;

/**
 * Warnings for given values that contradict the weights. `label(keyword, value)` says where the
 * value came from: `Modelfile QUANTIZATION Q8_0`, `--quantization Q8_0`.
 */
export function contradictions(given: ModelFields, w: WeightsDescription, label: (keyword: string, value: string) => string): string[] {
  const out: string[] = [];
  const source = w.source.length <= 1 ? (w.source[0] ?? 'the weights') : `${w.source[0]} and ${w.source.length - 1} more file${w.source.length > 2 ? 's' : ''}`;
  for (const key of Object.keys(KEYWORD) as Checked[]) {
    const mine = given[key];
    const theirs = key === 'quantization' ? (w.quantization ?? w.fileType) : w[key];
    if (mine === undefined || mine === '' || theirs === undefined || agree(key, mine, theirs)) continue;
    out.push(`${label(KEYWORD[key], mine)} contradicts the weights: ${source} says ${theirs}; keeping ${mine}`);
  }
  return out;
}

function agree(key: Checked, mine: string, theirs: string): boolean {
  switch (key) {
    case 'format':
      return formatWord(mine) === formatWord(theirs);
    case 'paramSize': {
      const [a, b] = [paramCount(mine), paramCount(theirs)];
      return a === undefined || b === undefined || (Math.max(a, b) <= 1.25 * Math.min(a, b));
    }
    case 'precision': {
      // ModelPack allows mixed precisions, comma-separated: agreeing with one of them is enough.
      const t = precisionWord(theirs);
      return mine.split(',').some((p) => precisionWord(p) === t);
    }
    case 'quantization': {
      // DMR writes gguf-parser's pairs (`IQ2_XXS/Q4_K_M`): any name in common agrees.
      const a = quantWords(mine);
      return quantWords(theirs).some((q) => a.includes(q));
    }
  }
}

const FORMAT_ALIASES: Readonly<Record<string, string>> = { pt: 'pytorch', pth: 'pytorch', torch: 'pytorch', safetensor: 'safetensors' };
function formatWord(s: string): string {
  const l = s.trim().toLowerCase();
  return FORMAT_ALIASES[l] ?? l;
}

const PRECISION_ALIASES: Readonly<Record<string, string>> = {
  bf16: 'bfloat16', f16: 'float16', fp16: 'float16', half: 'float16', f32: 'float32', fp32: 'float32', float: 'float32',
  f64: 'float64', fp64: 'float64', double: 'float64', i8: 'int8', u8: 'uint8', float8_e4m3fn: 'float8_e4m3', f8_e4m3: 'float8_e4m3',
  f8_e5m2: 'float8_e5m2',
};
function precisionWord(s: string): string {
  const l = s.trim().toLowerCase().replace(/^torch\./, '');
  return PRECISION_ALIASES[l] ?? l;
}

function quantWords(s: string): string[] {
  return s.split('/').map((q) => q.trim().toUpperCase().replace(/-/g, '_')).filter(Boolean);
}

const SCALE: Readonly<Record<string, number>> = { k: 1e3, m: 1e6, b: 1e9, t: 1e12, q: 1e15 };
/** `7B`, `7.24b`, `494M`, `361.82 M`, `1.1T`, `123456`; undefined for anything else (`8x7B`). */
export function paramCount(s: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmbtq]?)\s*$/i.exec(s);
  if (!m) return undefined;
  return Number(m[1]) * (m[2] ? SCALE[m[2].toLowerCase()]! : 1);
}
