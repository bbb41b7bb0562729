/**
 * Ranking model variants by precision, and choosing the best one for the memory there is (pure).
 * Precision is bits per weight, read from the quantization (or precision) name: F32 > BF16 = F16 >
 * Q8_0 > Q6_K > Q5_K_M > Q4_K_M > ... llama.cpp's figures where known; otherwise derived from the
 * name (`Q<n>` or `IQ<n>` plus its block suffix, `int8`, `fp8`, ...).
 */

/** Bits per weight of llama.cpp's quantizations (llama.cpp `quantize --help` / ggml type sizes). */
const KNOWN_BITS: Record<string, number> = {
  F64: 64,
  F32: 32,
  BF16: 16,
  F16: 16,
  Q8_0: 8.5,
  Q8_1: 9,
  Q8_K: 9.1,
  Q6_K: 6.56,
  Q5_1: 6,
  Q5_K_M: 5.67,
  Q5_0: 5.5,
  Q5_K_S: 5.54,
  Q4_1: 5,
  Q4_K_M: 4.85,
  Q4_K_S: 4.58,
  Q4_0: 4.5,
  IQ4_NL: 4.5,
  IQ4_XS: 4.25,
  MXFP4: 4.25,
  Q3_K_L: 4.27,
  Q3_K_M: 3.91,
  Q3_K_S: 3.5,
  IQ3_M: 3.66,
  IQ3_S: 3.44,
  IQ3_XS: 3.3,
  IQ3_XXS: 3.06,
  Q2_K: 3.35,
  Q2_K_S: 2.96,
  IQ2_M: 2.7,
  IQ2_S: 2.5,
  IQ2_XS: 2.31,
  IQ2_XXS: 2.06,
  TQ2_0: 2.06,
  TQ1_0: 1.69,
  IQ1_M: 1.75,
  IQ1_S: 1.56,
};

/** Other spellings of the unquantized types (ModelPack `precision`, safetensors dtypes). */
const ALIASES: Record<string, string> = {
  FLOAT64: 'F64',
  FP64: 'F64',
  FLOAT32: 'F32',
  FP32: 'F32',
  FLOAT16: 'F16',
  FP16: 'F16',
  HALF: 'F16',
  BFLOAT16: 'BF16',
};

const SUFFIX_BITS: Record<string, number> = { '': 0.5, _0: 0.5, _1: 1, _K: 0.6, _K_S: 0.5, _K_M: 0.8, _K_L: 1, _XXS: 0.05, _XS: 0.3, _S: 0.45, _M: 0.7, _NL: 0.5 };

/** Bits per weight of a quantization or precision name; undefined when the name says nothing. */
export function bitsPerWeight(name: string | undefined): number | undefined {
  if (!name) return undefined;
  const key = name.trim().toUpperCase().replace(/-/g, '_');
  const canon = ALIASES[key] ?? key;
  if (KNOWN_BITS[canon] !== undefined) return KNOWN_BITS[canon];
  // Q5_K_X, IQ3_Y, ... not in the table: the digit plus what the block scales usually add.
  const q = /^(I?)Q(\d{1,2})((?:_[A-Z0-9]+)*)$/.exec(canon);
  if (q) return Number(q[2]) + (SUFFIX_BITS[q[3]!] ?? 0.5) - (q[1] ? 0.2 : 0);
  const f = /^(?:F|FP|FLOAT|BF|BFLOAT|E\dM\d|FP\dE\dM\d|INT|I|U|UINT)(\d{1,2})(?:_.*)?$/.exec(canon);
  if (f) return Number(f[1]);
  return undefined;
}

/** The unquantized type's name for a precision word (`float16` → `F16`), or undefined. */
export function precisionName(precision: string | undefined): string | undefined {
  if (!precision) return undefined;
  const key = precision.trim().toUpperCase();
  const canon = ALIASES[key] ?? key;
  return ['F64', 'F32', 'BF16', 'F16'].includes(canon) ? canon : undefined;
}

export interface Candidate<T> {
  item: T;
  /** What the variant is called (its quantization). */
  name: string;
  /** Bytes of its weights. */
  weightBytes: number;
}

export interface MemoryChoice<T> {
  chosen: Candidate<T>;
  /** One line for the user: what was chosen and why. */
  reason: string;
}

/** Weights may take this share of the memory available (the rest: KV cache, activations, the OS). */
export const WEIGHT_SHARE = 0.8;

/**
 * The highest-precision candidate whose weights fit `WEIGHT_SHARE` of `memory` bytes (ties: the
 * first given). Candidates whose precision is unknown are not ranked (they are left out). Throws
 * nothing: `undefined` when none fits, and `reason` then says what the smallest one needs.
 */
export function chooseByMemory<T>(candidates: readonly Candidate<T>[], memory: number): { choice?: MemoryChoice<T>; reason: string } {
  const ranked = candidates
    .map((c, i) => ({ c, i, bits: bitsPerWeight(c.name) }))
    .filter((x): x is { c: Candidate<T>; i: number; bits: number } => x.bits !== undefined)
    .sort((a, b) => b.bits - a.bits || a.i - b.i);
  const budget = memory * WEIGHT_SHARE;
  const needs = (c: Candidate<T>) => `${c.name} needs ${formatBytes(c.weightBytes / WEIGHT_SHARE)} (${formatBytes(c.weightBytes)} of weights)`;
  const fit = ranked.find((x) => x.c.weightBytes <= budget);
  if (!fit) {
    const smallest = [...ranked].sort((a, b) => a.c.weightBytes - b.c.weightBytes)[0];
    return { reason: `no variant fits ${formatBytes(memory)} available${smallest ? `: the smallest, ${needs(smallest.c)}` : ''}` };
  }
  const better = ranked.filter((x) => x.bits > fit.bits);
  const why = `chose ${fit.c.name} (${formatBytes(fit.c.weightBytes)} of weights; ${formatBytes(memory)} available)`;
  return { choice: { chosen: fit.c, reason: better.length ? `${why}; ${better.map((x) => needs(x.c)).join(', ')}` : why }, reason: why };
}

/** 1.5 GiB, 190.0 KiB: binary units, one decimal. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${Math.round(v)} B` : `${v.toFixed(1)} ${units[u]}`;
}
