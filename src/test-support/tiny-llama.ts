/**
 * A tiny LLaMA GGUF with seeded random weights that llama.cpp really loads and generates from
 * (E=64, F=128, 2 blocks, 4 heads, 2 KV heads), and a LoRA adapter for it. Same options → same
 * bytes. See /work/shared/reference/engines.md §1 for why each key and type is what it is.
 */
import { stat } from 'node:fs/promises';
import { GgufType, type GgufKv } from '../formats/gguf.js';
import { kv, writeGguf, type GgufWriteTensor } from './gguf-writer.js';

export type TinyLlamaFileType = 'F32' | 'F16' | 'Q8_0';

export interface TinyLlamaOptions {
  /** PRNG seed of the weights (default 1) */
  seed?: number;
  /** type of the 2-D weights (norms stay F32); default Q8_0 */
  fileType?: TinyLlamaFileType;
  /** general.name (default 'Tiny Llama (random weights)') */
  name?: string;
  /** llama.context_length (default 2048) */
  contextLength?: number;
  /** tokenizer.chat_template; null leaves the key out (default TINY_LLAMA_CHAT_TEMPLATE) */
  chatTemplate?: string | null;
}

export interface TinyLoraOptions {
  /** PRNG seed of the adapter weights (default 7) */
  seed?: number;
  /** LoRA rank (default 8) */
  rank?: number;
  /** adapter.lora.alpha; llama.cpp scales by alpha/rank (default: rank, i.e. 1) */
  alpha?: number;
}

/** ChatML, which node-llama-cpp recognises (it then uses its ChatMLChatWrapper). */
export const TINY_LLAMA_CHAT_TEMPLATE =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

export const TINY_LLAMA_DIMS = { embedding: 64, feedForward: 128, blocks: 2, heads: 4, kvHeads: 2 } as const;

const E = TINY_LLAMA_DIMS.embedding;
const F = TINY_LLAMA_DIMS.feedForward;
const HEAD = E / TINY_LLAMA_DIMS.heads; // 16: rope dims must equal the head size
const KV = TINY_LLAMA_DIMS.kvHeads * HEAD; // 32
const GGML = { F32: 0, F16: 1, Q8_0: 8 } as const;
const FILE_TYPE = { F32: 0, F16: 1, Q8_0: 7 } as const; // llama_ftype
const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, byte: 6 } as const;

const WORDS = (
  'the of and to in is it you that he was for on are with as his they be at one have this from or had by ' +
  'word but what some we can out other were all there when up use your how said an each she which do their ' +
  'time if will way about many then them write would like so these her long make thing see him two has look ' +
  'more day could go come did number sound no most people my over know water than call first who may down ' +
  'side been now find any new work part take get place made live where after back little only round man year ' +
  'came show every good me give our under name very through just form sentence great think say help low line ' +
  'hello world model cat dog tree river light music story small big red blue green happy quiet'
).split(' ');

interface Vocab {
  tokens: string[];
  types: number[];
  /** ids below this are special or byte tokens */
  firstNormal: number;
  /** ids of complete words (▁word), favoured by output.weight */
  wholeWords: Set<number>;
}

/** The vocabulary: specials, 256 byte tokens, ChatML controls, then ▁, printable ASCII, ▁words. */
function buildVocab(): Vocab {
  const tokens = ['<unk>', '<s>', '</s>'];
  const types: number[] = [TOKEN_TYPE.unknown, TOKEN_TYPE.control, TOKEN_TYPE.control];
  // byte fallback: any UTF-8 input tokenizes; llama.cpp wants upper-case hex
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(TOKEN_TYPE.byte);
  }
  tokens.push('<|im_start|>', '<|im_end|>');
  types.push(TOKEN_TYPE.control, TOKEN_TYPE.control);
  const firstNormal = tokens.length;
  const seen = new Set<string>();
  const add = (t: string): number => {
    if (!seen.has(t)) {
      seen.add(t);
      tokens.push(t);
      types.push(TOKEN_TYPE.normal);
    }
    return tokens.indexOf(t);
  };
  add('\u2581');
  for (let c = 0x21; c < 0x7f; c++) add(String.fromCharCode(c));
  const wholeWords = new Set<number>();
  for (const w of WORDS) {
    // SentencePiece only merges into pieces that exist, so every prefix of ▁word must be a token
    const piece = `\u2581${w}`;
    for (let n = 2; n < piece.length; n++) add(piece.slice(0, n));
    wholeWords.add(add(piece));
  }
  return { tokens, types, firstNormal, wholeWords };
}

const VOCAB = buildVocab();
export const TINY_LLAMA_VOCAB_SIZE = VOCAB.tokens.length;
/** The id of <|im_end|> (end of turn). */
export const TINY_LLAMA_EOT = VOCAB.tokens.indexOf('<|im_end|>');

/** mulberry32: a small seeded PRNG (no Math.random, so files are reproducible). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` values uniform in [-amp, amp), rounded to f32. */
function uniform(rand: () => number, n: number, amp: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rand() * 2 - 1) * amp;
  return out;
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** IEEE half precision bits of `v`, rounded to nearest even (no NaN among our weights). */
export function toF16(v: number): number {
  f32Scratch[0] = v;
  const x = u32Scratch[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = ((x >>> 23) & 0xff) - 127 + 15;
  let mant = x & 0x7fffff;
  if (exp >= 31) return sign | 0x7c00;
  if (exp <= 0) {
    if (exp < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - exp;
    const half = 1 << (shift - 1);
    const rem = mant & ((1 << shift) - 1);
    let h = mant >>> shift;
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  const rem = mant & 0x1fff;
  let h = (exp << 10) | (mant >>> 13);
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // a carry into the exponent is correct
  return sign | h;
}

function encodeF32(v: Float32Array): Buffer {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

function encodeF16(v: Float32Array): Buffer {
  const b = Buffer.alloc(v.length * 2);
  v.forEach((x, i) => b.writeUInt16LE(toF16(x), i * 2));
  return b;
}

/** Q8_0 as ggml's quantize_row_q8_0_ref: per 32 values an f16 scale amax/127, then 32 int8. */
function encodeQ8_0(v: Float32Array): Buffer {
  const b = Buffer.alloc((v.length / 32) * 34);
  for (let blk = 0; blk < v.length / 32; blk++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(v[blk * 32 + j]!));
    const d = Math.fround(amax / 127);
    const id = d ? Math.fround(1 / d) : 0;
    b.writeUInt16LE(toF16(d), blk * 34);
    for (let j = 0; j < 32; j++) {
      const x = Math.fround(v[blk * 32 + j]! * id);
      b.writeInt8(Math.sign(x) * Math.floor(Math.abs(x) + 0.5), blk * 34 + 2 + j); // C roundf
    }
  }
  return b;
}

function encode(type: number, v: Float32Array): Buffer {
  if (type === GGML.F16) return encodeF16(v);
  if (type === GGML.Q8_0) return encodeQ8_0(v);
  return encodeF32(v);
}

interface Tensor extends GgufWriteTensor {
  values: Float32Array;
}

/** Writes the tiny model; returns its path and size in bytes. */
export async function writeTinyLlama(path: string, opts: TinyLlamaOptions = {}): Promise<{ path: string; size: number }> {
  const fileType = opts.fileType ?? 'Q8_0';
  const weightType = GGML[fileType];
  const V = TINY_LLAMA_VOCAB_SIZE;
  const rand = prng(opts.seed ?? 1);
  // uniform(-a, a) has std a/√3: √(3/fan_in) keeps activations at unit scale through each matmul
  const scaled = (fanIn: number, n: number): Float32Array => uniform(rand, n, Math.sqrt(3 / fanIn));
  const tensors: Tensor[] = [];
  const weight = (name: string, dims: [number, number], values: Float32Array): void => {
    tensors.push({ name, dims, type: weightType, values });
  };
  const norm = (name: string): void => {
    tensors.push({ name, dims: [E], type: GGML.F32, values: new Float32Array(E).fill(1) });
  };

  weight('token_embd.weight', [E, V], uniform(rand, E * V, 1));
  for (let b = 0; b < TINY_LLAMA_DIMS.blocks; b++) {
    norm(`blk.${b}.attn_norm.weight`);
    weight(`blk.${b}.attn_q.weight`, [E, E], scaled(E, E * E));
    weight(`blk.${b}.attn_k.weight`, [E, KV], scaled(E, E * KV));
    weight(`blk.${b}.attn_v.weight`, [E, KV], scaled(E, E * KV));
    weight(`blk.${b}.attn_output.weight`, [E, E], scaled(E, E * E));
    norm(`blk.${b}.ffn_norm.weight`);
    weight(`blk.${b}.ffn_gate.weight`, [E, F], scaled(E, E * F));
    weight(`blk.${b}.ffn_up.weight`, [E, F], scaled(E, E * F));
    weight(`blk.${b}.ffn_down.weight`, [F, E], scaled(F, F * E));
  }
  norm('output_norm.weight');
  // logits get a std of ~2.3 after the final norm: greedy picks vary with the context
  const output = uniform(rand, E * V, 0.5);
  for (let t = 0; t < V; t++) {
    // a zero row gives logit 0, below the best random one: greedy decoding never emits control
    // or byte tokens, so it stays printable and does not stop at once on </s> or <|im_end|>
    if (t < VOCAB.firstNormal) output.fill(0, t * E, (t + 1) * E);
    // complete words get larger logits, so the output reads as words more than as fragments
    else if (VOCAB.wholeWords.has(t)) for (let i = t * E; i < (t + 1) * E; i++) output[i] = output[i]! * 1.5;
  }
  weight('output.weight', [E, V], output);

  const metadata: Array<[string, GgufKv]> = [
    ['general.architecture', kv.str('llama')],
    ['general.name', kv.str(opts.name ?? 'Tiny Llama (random weights)')],
    ['general.alignment', kv.u32(32)],
    ['general.file_type', kv.u32(FILE_TYPE[fileType])],
    ['general.quantization_version', kv.u32(2)],
    // llama.cpp rejects wrong key types: counts and ids UINT32, epsilon and rope base FLOAT32
    ['llama.vocab_size', kv.u32(V)],
    ['llama.context_length', kv.u32(opts.contextLength ?? 2048)],
    ['llama.embedding_length', kv.u32(E)],
    ['llama.block_count', kv.u32(TINY_LLAMA_DIMS.blocks)],
    ['llama.feed_forward_length', kv.u32(F)],
    ['llama.attention.head_count', kv.u32(TINY_LLAMA_DIMS.heads)],
    ['llama.attention.head_count_kv', kv.u32(TINY_LLAMA_DIMS.kvHeads)],
    ['llama.rope.dimension_count', kv.u32(HEAD)],
    ['llama.rope.freq_base', kv.f32(10000)],
    ['llama.attention.layer_norm_rms_epsilon', kv.f32(1e-5)],
    ['tokenizer.ggml.model', kv.str('llama')],
    ['tokenizer.ggml.tokens', kv.arr(GgufType.STRING, VOCAB.tokens)],
    // SentencePiece merges the best-scoring pair first; only ▁-prefixed pieces grow, so any order works
    ['tokenizer.ggml.scores', kv.arr(GgufType.FLOAT32, VOCAB.tokens.map((_, i) => -i))],
    ['tokenizer.ggml.token_type', kv.arr(GgufType.INT32, VOCAB.types)],
    ['tokenizer.ggml.unknown_token_id', kv.u32(0)],
    ['tokenizer.ggml.bos_token_id', kv.u32(1)],
    ['tokenizer.ggml.eos_token_id', kv.u32(2)],
    ['tokenizer.ggml.eot_token_id', kv.u32(TINY_LLAMA_EOT)],
    ['tokenizer.ggml.add_bos_token', kv.bool(true)],
    ['tokenizer.ggml.add_eos_token', kv.bool(false)],
  ];
  const template = opts.chatTemplate === undefined ? TINY_LLAMA_CHAT_TEMPLATE : opts.chatTemplate;
  if (template !== null) metadata.push(['tokenizer.chat_template', kv.str(template)]);

  await writeGguf(path, { version: 3, metadata, tensors }, { data: (_t, i) => encode(tensors[i]!.type, tensors[i]!.values) });
  return { path, size: (await stat(path)).size };
}

/**
 * Writes a LoRA adapter for the tiny model: F32 pairs on attn_q, attn_v (each block) and
 * output.weight. llama.cpp computes W·x + scale·alpha/rank·B·(A·x) with A = lora_a [in, rank] and
 * B = lora_b [rank, out] (GGUF dims), so B·A matches W's [in, out].
 */
export async function writeTinyLora(path: string, opts: TinyLoraOptions = {}): Promise<{ path: string; size: number }> {
  const r = opts.rank ?? 8;
  const rand = prng(opts.seed ?? 7);
  const V = TINY_LLAMA_VOCAB_SIZE;
  const tensors: Tensor[] = [];
  const pair = (name: string, inDim: number, outDim: number, bAmp: number): Float32Array => {
    tensors.push({ name: `${name}.lora_a`, dims: [inDim, r], type: GGML.F32, values: uniform(rand, inDim * r, Math.sqrt(3 / inDim)) });
    const b = uniform(rand, r * outDim, bAmp);
    tensors.push({ name: `${name}.lora_b`, dims: [r, outDim], type: GGML.F32, values: b });
    return b;
  };
  for (let blk = 0; blk < TINY_LLAMA_DIMS.blocks; blk++) {
    pair(`blk.${blk}.attn_q.weight`, E, E, Math.sqrt(3 / r));
    pair(`blk.${blk}.attn_v.weight`, E, KV, Math.sqrt(3 / r));
  }
  // the output delta is as large as the base logits: greedy picks change for sure
  const b = pair('output.weight', E, V, Math.sqrt(3 / r) * 2.3);
  // as in the base model: no logit for control and byte tokens (B's column t is r values at t*r)
  b.fill(0, 0, VOCAB.firstNormal * r);

  const metadata: Array<[string, GgufKv]> = [
    ['general.architecture', kv.str('llama')],
    ['general.type', kv.str('adapter')],
    ['general.name', kv.str('Tiny Llama LoRA (random weights)')],
    ['general.alignment', kv.u32(32)],
    ['adapter.type', kv.str('lora')],
    ['adapter.lora.alpha', kv.f32(opts.alpha ?? r)],
  ];
  await writeGguf(path, { version: 3, metadata, tensors }, { data: (_t, i) => encodeF32(tensors[i]!.values) });
  return { path, size: (await stat(path)).size };
}
