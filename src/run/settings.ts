/**
 * Runtime settings and their precedence: flags > the model's own runtime configuration (Docker
 * Model Runner's `context_size` and chat template layer; Ollama's `params`, `system` and
 * `template` layers) > what the GGUF says (its `tokenizer.chat_template` and context length, read
 * by the engine).
 */
import type { ChatFormat } from '../engine/engine.js';
import { DOCKER_AI_CHAT_TEMPLATE } from '../interop/docker-ai.js';
import type { LoadedModel } from '../interop/load-model.js';
import { OLLAMA_PARAMS, OLLAMA_PREFIX, OLLAMA_SYSTEM, OLLAMA_TEMPLATE } from '../interop/ollama.js';

/** The older name of Ollama's template layer. */
const OLLAMA_PROMPT = `${OLLAMA_PREFIX}prompt`;
import type { LocalStore } from '../store/store.js';

export interface RunSettings {
  contextSize?: number;
  temperature?: number;
  topP?: number;
  seed?: number;
  maxTokens?: number;
  system?: string;
  stop?: string[];
  chatFormat?: ChatFormat;
}

/** The temperature when neither the user nor the model gives one (as llama.cpp's server and Ollama). */
export const DEFAULT_TEMPERATURE = 0.8;

/** Runtime layers are text of a few hundred bytes; larger ones are not read. */
const MAX_SETTINGS_BYTES = 1024 * 1024;

export async function modelSettings(store: LocalStore, model: LoadedModel): Promise<RunSettings> {
  const s: RunSettings = {};
  if (model.view.format === 'docker-ai' && model.meta.contextSize) s.contextSize = model.meta.contextSize;
  for (const f of model.view.files) {
    const media = f.layer.mediaType.split(';')[0]!.trim();
    if (![OLLAMA_PARAMS, OLLAMA_SYSTEM, OLLAMA_TEMPLATE, OLLAMA_PROMPT, DOCKER_AI_CHAT_TEMPLATE].includes(media)) continue;
    if (f.layer.size > MAX_SETTINGS_BYTES || !(await store.exists(f.layer))) continue;
    const text = (await store.blobs.read(f.layer, MAX_SETTINGS_BYTES)).toString('utf8');
    if (media === OLLAMA_PARAMS) Object.assign(s, ollamaParams(text));
    else if (media === OLLAMA_SYSTEM) s.system = text;
    else if (media === OLLAMA_TEMPLATE || media === OLLAMA_PROMPT) {
      const family = goTemplateFamily(text);
      if (family) s.chatFormat = { family };
    } else s.chatFormat = { jinja: text };
  }
  return s;
}

/** Ollama's params.json: num_ctx, temperature, top_p, seed, stop, num_predict (others ignored). */
export function ollamaParams(text: string): RunSettings {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return {};
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return {};
  const p = doc as Record<string, unknown>;
  const s: RunSettings = {};
  const int = (v: unknown) => (typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : undefined);
  const real = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined);
  const ctx = int(p.num_ctx);
  if (ctx) s.contextSize = ctx;
  const predict = int(p.num_predict);
  if (predict) s.maxTokens = predict;
  const temperature = real(p.temperature);
  if (temperature !== undefined) s.temperature = temperature;
  const topP = real(p.top_p);
  if (topP !== undefined && topP <= 1) s.topP = topP;
  if (typeof p.seed === 'number' && Number.isSafeInteger(p.seed) && p.seed >= 0) s.seed = p.seed; // -1: random
  const stop = (typeof p.stop === 'string' ? [p.stop] : Array.isArray(p.stop) ? p.stop : []).filter((x): x is string => typeof x === 'string' && x !== '');
  if (stop.length) s.stop = stop;
  return s;
}

/**
 * Ollama templates are Go templates, which llama.cpp cannot run: the chat family they write is
 * recognised by its markers instead; an unknown one leaves the GGUF's own template in charge.
 */
export function goTemplateFamily(t: string): 'chatml' | 'llama3' | 'llama2' | 'mistral' | 'gemma' | undefined {
  if (t.includes('<|start_header_id|>')) return 'llama3';
  if (t.includes('<|im_start|>')) return 'chatml';
  if (t.includes('<start_of_turn>')) return 'gemma';
  if (t.includes('<<SYS>>')) return 'llama2';
  if (t.includes('[INST]')) return 'mistral';
  return undefined;
}

/** Flags over the model's settings: the first defined value of each field wins. */
export function mergeSettings(...layers: RunSettings[]): RunSettings {
  const out: RunSettings = {};
  for (const layer of layers.reverse()) {
    for (const [k, v] of Object.entries(layer)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  }
  return out;
}
