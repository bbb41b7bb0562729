/**
 * The ModelPack model config (`application/vnd.cncf.model.config.v1+json`).
 * Reference: https://github.com/modelpack/model-spec/blob/main/docs/config.md
 *
 * mpk writes only fields that exist in both schema v0.0.7 and main, so what it writes validates
 * against both (the root and every sub-object refuse unknown keys). `config.architecture`,
 * `format`, `paramSize`, `precision` and `quantization` come from the Modelfile, which `mpk
 * modelfile generate` (and a build without one) fills from config.json and the weights' headers;
 * anything else a header says (GGUF metadata) cannot go here and travels as a manifest annotation
 * (ANNOTATION_GGUF_METADATA in oci/media-types.ts).
 */
import { PackError } from '../errors.js';

export interface ModelDescriptorInfo {
  createdAt?: string;
  authors?: string[];
  vendor?: string;
  family?: string;
  name?: string;
  version?: string;
  title?: string;
  description?: string;
  docURL?: string;
  sourceURL?: string;
  revision?: string;
  licenses?: string[];
}

export interface ModelConfigInfo {
  architecture?: string;
  format?: string;
  paramSize?: string;
  precision?: string;
  quantization?: string;
  capabilities?: Record<string, unknown>;
}

export interface ModelConfig {
  descriptor: ModelDescriptorInfo;
  modelfs: { type: 'layers'; diffIds: string[] };
  config: ModelConfigInfo;
}

export interface ModelConfigInput {
  name?: string;
  family?: string;
  arch?: string;
  format?: string;
  paramSize?: string;
  precision?: string;
  quantization?: string;
  /** RFC 3339 creation time; omitted unless given, so builds are reproducible. */
  createdAt?: string;
  diffIds: string[];
}

/** Builds the config; empty values are left out rather than written as "". */
export function buildModelConfig(input: ModelConfigInput): ModelConfig {
  if (input.diffIds.length === 0) throw new PackError('EMPTY_BUILD', 'a model needs at least one layer');
  const nonEmpty = (v: string | undefined) => (v === undefined || v === '' ? undefined : v);
  return {
    descriptor: {
      name: nonEmpty(input.name),
      family: nonEmpty(input.family),
      createdAt: nonEmpty(input.createdAt),
    },
    modelfs: { type: 'layers', diffIds: [...input.diffIds] },
    config: {
      architecture: nonEmpty(input.arch),
      format: nonEmpty(input.format),
      paramSize: nonEmpty(input.paramSize),
      precision: nonEmpty(input.precision),
      quantization: nonEmpty(input.quantization),
    },
  };
}

/** Reads a config from bytes, checking the shape mpk relies on; unknown keys are kept. */
export function parseModelConfig(bytes: Uint8Array, where = 'model config'): ModelConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (e) {
    throw new PackError('INVALID_MANIFEST', `${where}: not JSON (${(e as Error).message})`, { cause: e });
  }
  const o = doc as Partial<ModelConfig> | null;
  if (!o || typeof o !== 'object' || Array.isArray(o)) throw new PackError('INVALID_MANIFEST', `${where}: not a JSON object`);
  const obj = (v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? v : {});
  return {
    descriptor: obj(o.descriptor) as ModelDescriptorInfo,
    modelfs: (obj(o.modelfs) as ModelConfig['modelfs']) ?? { type: 'layers', diffIds: [] },
    config: obj(o.config) as ModelConfigInfo,
  };
}

/** SOURCE_DATE_EPOCH (seconds) or an explicit `--created` value, as RFC 3339 UTC. */
export function creationTime(created: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  if (created !== undefined) {
    if (created === 'now') return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    const t = /^\d+$/.test(created) ? new Date(Number(created) * 1000) : new Date(created);
    if (Number.isNaN(t.getTime())) {
      throw new PackError('USAGE', `--created ${JSON.stringify(created)}: not a time`, {
        hint: 'give an RFC 3339 time (2026-01-31T12:00:00Z), seconds since 1970, or "now"',
      });
    }
    return t.toISOString().replace(/\.\d{3}Z$/, 'Z');
  }
  const epoch = env.SOURCE_DATE_EPOCH;
  if (epoch !== undefined && epoch !== '') {
    if (!/^\d+$/.test(epoch)) {
      throw new PackError('USAGE', `SOURCE_DATE_EPOCH=${epoch}: not a whole number of seconds`, { hint: 'unset it or give seconds since 1970' });
    }
    return new Date(Number(epoch) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  }
  return undefined;
}
