/**
 * What `mpk ls` and `mpk inspect` show: a model's manifest, config and files, read from the store.
 */
import type { Descriptor } from '../oci/descriptor.js';
import type { Index, Manifest } from '../oci/manifest.js';
import type { LocalStore } from '../store/store.js';
import { parseModelConfig, type ModelConfig } from './config.js';
import { modelView, type ModelView } from './model-view.js';
import { modelMeta } from '../interop/metadata.js';

/** Configs larger than this are not parsed (ModelPack configs are a few hundred bytes). */
const MAX_CONFIG_BYTES = 1024 * 1024;

export interface ModelSummary {
  reference: string;
  digest: string;
  /** Manifest + config + layers, in bytes. */
  size: number;
  artifactType?: string;
  /** `modelpack`, `docker-ai`, `ollama`, `oci-image`, `index` or `other`. */
  kind: string;
  /** Weight format from the config (gguf, safetensors, …). */
  format?: string;
  paramSize?: string;
  quantization?: string;
  architecture?: string;
  name?: string;
}

export interface ModelDetails extends ModelSummary {
  manifest: Manifest | Index;
  config?: ModelConfig | unknown;
  files: (Omit<ModelView['files'][number], 'layer'> & { digest: string; size: number; mediaType: string })[];
}

/** Reads one model's details; a missing or odd config leaves those fields out rather than failing. */
export async function inspectModel(store: LocalStore, reference: string): Promise<ModelDetails> {
  const desc = await store.resolve(reference);
  return describe(store, reference, desc);
}

/** Every named model in the store, summarised. */
export async function listModels(store: LocalStore): Promise<ModelSummary[]> {
  const out: ModelSummary[] = [];
  for (const e of await store.list()) {
    try {
      const { manifest: _m, config: _c, files: _f, ...summary } = await describe(store, e.reference, e.descriptor);
      out.push(summary);
    } catch {
      out.push({ reference: e.reference, digest: e.descriptor.digest, size: e.descriptor.size, kind: 'unreadable' });
    }
  }
  return out;
}

async function describe(store: LocalStore, reference: string, desc: Descriptor): Promise<ModelDetails> {
  const parsed = await store.readManifest(desc);
  if (parsed.kind === 'index') {
    const size = desc.size + parsed.index.manifests.reduce((n, m) => n + m.size, 0);
    return { reference, digest: desc.digest, size, kind: 'index', manifest: parsed.index, files: [], ...(parsed.index.artifactType ? { artifactType: parsed.index.artifactType } : {}) };
  }
  const m = parsed.manifest;
  const view = modelView(m);
  let config: ModelConfig | unknown;
  let configBytes: Buffer | undefined;
  if (m.config.size <= MAX_CONFIG_BYTES && (await store.exists(m.config))) {
    configBytes = await store.blobs.read(m.config, MAX_CONFIG_BYTES);
    config = view.format === 'modelpack' ? parseModelConfig(configBytes, m.config.digest) : safeJson(configBytes);
  }
  const mc = view.format === 'modelpack' ? (config as ModelConfig | undefined) : undefined;
  const details: ModelDetails = {
    reference,
    digest: desc.digest,
    size: desc.size + m.config.size + m.layers.reduce((n, l) => n + l.size, 0),
    kind: view.format,
    manifest: m,
    config,
    files: view.files.map(({ layer, ...f }) => ({ ...f, digest: layer.digest, size: layer.size, mediaType: layer.mediaType })),
  };
  const artifactType = m.artifactType ?? m.config.mediaType;
  if (artifactType) details.artifactType = artifactType;
  if (mc?.config.format) details.format = mc.config.format;
  if (mc?.config.paramSize) details.paramSize = mc.config.paramSize;
  if (mc?.config.quantization) details.quantization = mc.config.quantization;
  if (mc?.descriptor.name) details.name = mc.descriptor.name;
  if (mc?.config.architecture) details.architecture = mc.config.architecture;
  if ((view.format === 'docker-ai' || view.format === 'ollama') && configBytes) {
    // The same summary fields, from their own config keys.
    const meta = modelMeta(view.format, configBytes);
    if (meta.format) details.format = meta.format;
    if (meta.paramSize) details.paramSize = meta.paramSize;
    if (meta.quantization) details.quantization = meta.quantization;
    if (meta.architecture) details.architecture = meta.architecture;
  }
  return details;
}

function safeJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
}
