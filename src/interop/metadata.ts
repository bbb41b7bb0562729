/**
 * One summary of a model's config, whatever wrote it: ModelPack, Docker Model Runner or Ollama.
 * What `mpk ls`/`inspect` show and what conversions carry over. Lenient: odd fields are ignored.
 */
import { parseModelConfig, type ModelConfig } from '../modelpack/config.js';

export interface ModelMeta {
  /** Weight format: gguf, safetensors, ... */
  format?: string;
  /** Parameter count as the writer printed it (`8B`, `361.82M`, `8.0B`). */
  paramSize?: string;
  quantization?: string;
  precision?: string;
  architecture?: string;
  /** Model family (ModelPack descriptor.family, Ollama model_family). */
  family?: string;
  name?: string;
  /** RFC 3339 creation time. */
  created?: string;
  contextSize?: number;
}

export type MetaSource = 'modelpack' | 'docker-ai' | 'ollama';

export function modelMeta(source: MetaSource, bytes: Uint8Array): ModelMeta {
  if (source === 'modelpack') return fromModelPack(parseModelConfig(bytes));
  const doc = parseObject(bytes);
  if (!doc) return {};
  return source === 'docker-ai' ? fromDockerAi(doc) : fromOllama(doc);
}

export function fromModelPack(c: ModelConfig): ModelMeta {
  const m: ModelMeta = {};
  set(m, 'format', c.config.format);
  set(m, 'paramSize', c.config.paramSize);
  set(m, 'quantization', c.config.quantization);
  set(m, 'precision', c.config.precision);
  set(m, 'architecture', c.config.architecture);
  set(m, 'family', c.descriptor.family);
  set(m, 'name', c.descriptor.name);
  setTime(m, c.descriptor.createdAt);
  return m;
}

function fromDockerAi(doc: Record<string, unknown>): ModelMeta {
  const c = obj(doc.config);
  const m: ModelMeta = {};
  set(m, 'format', c.format);
  set(m, 'paramSize', c.parameters);
  set(m, 'quantization', c.quantization);
  set(m, 'architecture', c.architecture);
  setTime(m, obj(doc.descriptor).created);
  if (typeof c.context_size === 'number' && Number.isSafeInteger(c.context_size)) m.contextSize = c.context_size;
  return m;
}

function fromOllama(doc: Record<string, unknown>): ModelMeta {
  const m: ModelMeta = {};
  set(m, 'format', doc.model_format);
  set(m, 'paramSize', doc.model_type);
  set(m, 'quantization', doc.file_type);
  set(m, 'architecture', doc.model_family);
  set(m, 'family', doc.model_family);
  if (typeof doc.context_length === 'number' && Number.isSafeInteger(doc.context_length)) m.contextSize = doc.context_length;
  return m;
}

function set(m: ModelMeta, k: Exclude<keyof ModelMeta, 'contextSize'>, v: unknown): void {
  if (typeof v === 'string' && v !== '') m[k] = v;
}

/**
 * RFC 3339 date-time (`2025-03-07T10:47:28.123456789Z`, `…+01:00`), as Go's time.Time and ModelPack's
 * `createdAt` (JSON Schema date-time) require. Anything else is not carried over: a conversion would
 * write a config the other side cannot parse (and `now` would make it differ on every run).
 */
const RFC3339 = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$/;

export function isRfc3339(v: unknown): v is string {
  return typeof v === 'string' && RFC3339.test(v) && !Number.isNaN(Date.parse(v));
}

function setTime(m: ModelMeta, v: unknown): void {
  if (isRfc3339(v)) m.created = v;
}

function obj(v: unknown): Record<string, unknown> {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function parseObject(bytes: Uint8Array): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
