/**
 * What `mpk ls` and `mpk inspect` show: a model's manifest, config and files, read from the store.
 * inspect adds what the weights' headers said at build time: the GGUF metadata (mpk's manifest
 * annotation, or a Docker Model Runner config's `gguf` map) and the context length (from that
 * metadata, DMR's `context_size`, or a top-level `config.json` layer).
 */
import type { Descriptor } from '../oci/descriptor.js';
import type { Index, Manifest, ParsedManifest } from '../oci/manifest.js';
import { ANNOTATION_GGUF_METADATA } from '../oci/media-types.js';
import type { LocalStore } from '../store/store.js';
import { parseModelConfig, type ModelConfig } from './config.js';
import { modelView, type ModelView } from './model-view.js';
import { modelMeta } from '../interop/metadata.js';
import { variantsOf, type VariantInfo } from './variant-index.js';

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

/** What ls and inspect of the store give: for an index, what each entry says of its variant and whether it is stored. */
export interface StoredSummary extends ModelSummary {
  variants?: VariantInfo[];
}
export interface StoredDetails extends ModelDetails {
  variants?: VariantInfo[];
}

export interface ModelDetails extends ModelSummary {
  precision?: string;
  /** Tokens the model was trained for (GGUF `<arch>.context_length`, config.json `max_position_embeddings`, …). */
  contextLength?: number;
  /** The GGUF header's metadata: every key, large arrays and strings summarised. */
  ggufMetadata?: Record<string, unknown>;
  manifest: Manifest | Index;
  config?: ModelConfig | unknown;
  files: (Omit<ModelView['files'][number], 'layer'> & { digest: string; size: number; mediaType: string })[];
}

/**
 * Where inspect reads a model from: the local store, or a registry (src/transfer/remote-inspect.ts)
 * that fetches only manifests and small blobs. `readBlob` gives undefined for what it does not hold.
 */
export interface ModelSource {
  readManifest(desc: Descriptor): Promise<ParsedManifest>;
  readBlob(desc: Descriptor, maxBytes: number): Promise<Buffer | undefined>;
}

/** The local store as a ModelSource: blobs it does not hold (or not unchanged) are left out. */
export function storeSource(store: LocalStore): ModelSource {
  return {
    readManifest: (desc) => store.readManifest(desc),
    readBlob: async (desc, maxBytes) => ((await store.exists(desc)) ? store.blobs.read(desc, maxBytes) : undefined),
  };
}

/** Reads one model's details; a missing or odd config leaves those fields out rather than failing. */
export async function inspectModel(store: LocalStore, reference: string): Promise<StoredDetails> {
  const desc = await store.resolve(reference);
  return withVariants(store, await describeModel(storeSource(store), reference, desc, true));
}

/** Every named model in the store, summarised. */
export async function listModels(store: LocalStore): Promise<StoredSummary[]> {
  const out: StoredSummary[] = [];
  for (const e of await store.list()) {
    try {
      const { manifest: _m, config: _c, files: _f, precision: _p, contextLength: _l, ggufMetadata: _g, ...summary } = await withVariants(store, await describeModel(storeSource(store), e.reference, e.descriptor, false));
      out.push(summary);
    } catch {
      out.push({ reference: e.reference, digest: e.descriptor.digest, size: e.descriptor.size, kind: 'unreadable' });
    }
  }
  return out;
}

/** One manifest (or index) read from `source` as inspect shows it; `deep` adds the GGUF metadata and context length. */
export async function describeModel(source: ModelSource, reference: string, desc: Descriptor, deep: boolean): Promise<ModelDetails> {
  const parsed = await source.readManifest(desc);
  if (parsed.kind === 'index') {
    const size = desc.size + parsed.index.manifests.reduce((n, m) => n + m.size, 0);
    return { reference, digest: desc.digest, size, kind: 'index', manifest: parsed.index, files: [], ...(parsed.index.artifactType ? { artifactType: parsed.index.artifactType } : {}) };
  }
  const m = parsed.manifest;
  const view = modelView(m);
  let config: ModelConfig | unknown;
  let configBytes: Buffer | undefined;
  if (m.config.size <= MAX_CONFIG_BYTES) configBytes = await source.readBlob(m.config, MAX_CONFIG_BYTES);
  if (configBytes) config = view.format === 'modelpack' ? parseModelConfig(configBytes, m.config.digest) : safeJson(configBytes);
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
  if (mc?.config.precision) details.precision = mc.config.precision;
  if ((view.format === 'docker-ai' || view.format === 'ollama') && configBytes) {
    // The same summary fields, from their own config keys.
    const meta = modelMeta(view.format, configBytes);
    if (meta.format) details.format = meta.format;
    if (meta.paramSize) details.paramSize = meta.paramSize;
    if (meta.quantization) details.quantization = meta.quantization;
    if (meta.architecture) details.architecture = meta.architecture;
    if (meta.precision) details.precision = meta.precision;
    if (meta.contextSize !== undefined && meta.contextSize > 0) details.contextLength = meta.contextSize;
  }
  if (!deep) return details;
  const gguf = objectOf(m.annotations?.[ANNOTATION_GGUF_METADATA]) ?? (view.format === 'docker-ai' ? dockerGguf(config) : undefined);
  if (gguf) {
    details.ggufMetadata = gguf;
    const arch = gguf['general.architecture'];
    const ctx = typeof arch === 'string' ? Number(gguf[`${arch}.context_length`]) : NaN;
    if (details.contextLength === undefined && Number.isSafeInteger(ctx) && ctx > 0) details.contextLength = ctx;
  }
  if (details.contextLength === undefined) {
    const ctx = await contextFromConfigJson(source, view);
    if (ctx !== undefined) details.contextLength = ctx;
  }
  return details;
}

/**
 * A stored index with what each entry says of its variant (mpk index create's annotations) and
 * whether that variant is stored; its size counts each stored variant whole. One format or
 * parameter size shared by all variants is the index's; the quantizations are listed.
 */
async function withVariants(store: LocalStore, d: ModelDetails): Promise<StoredDetails> {
  if (d.kind !== 'index') return d;
  const index = d.manifest as Index;
  const variants = await variantsOf(store, index);
  let size = d.size - index.manifests.reduce((n, m) => n + m.size, 0);
  for (const e of index.manifests) size += await storedSize(store, e);
  const out: StoredDetails = { ...d, size, variants };
  const one = (k: 'format' | 'paramSize') => {
    const vals = [...new Set(variants.map((v) => v[k]))];
    return vals.length === 1 ? vals[0] : undefined;
  };
  const format = one('format');
  const paramSize = one('paramSize');
  if (format) out.format = format;
  if (paramSize) out.paramSize = paramSize;
  const quants = variants.map((v) => v.quantization).filter((q): q is string => !!q);
  if (quants.length) out.quantization = quants.join(',');
  return out;
}

/** A stored manifest with its config and layers, in bytes; its own size when not (fully) stored. */
async function storedSize(store: LocalStore, e: Descriptor): Promise<number> {
  const parsed = await store.readManifest(e).catch(() => undefined);
  if (parsed?.kind !== 'manifest') return e.size;
  return e.size + parsed.manifest.config.size + parsed.manifest.layers.reduce((n, l) => n + l.size, 0);
}

/** A JSON object in an annotation; undefined when absent or not one. */
function objectOf(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  const v = safeJson(Buffer.from(text));
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/** A DMR config's `gguf` map (every header key as a string). */
function dockerGguf(config: unknown): Record<string, unknown> | undefined {
  const g = (config as { config?: { gguf?: unknown } } | undefined)?.config?.gguf;
  return g && typeof g === 'object' && !Array.isArray(g) && Object.keys(g).length > 0 ? (g as Record<string, unknown>) : undefined;
}

/** The keys Hugging Face configs give the context length under, as DMR reads them. */
const CONTEXT_KEYS = ['max_position_embeddings', 'n_ctx', 'n_positions', 'max_length', 'max_sequence_length', 'model_max_length'];

/** The context length a top-level config.json layer gives (a small raw blob read from the store). */
async function contextFromConfigJson(source: ModelSource, view: ModelView): Promise<number | undefined> {
  const f = view.files.find((x) => x.path === 'config.json' && x.encoding === 'raw' && x.layer.size <= MAX_CONFIG_BYTES);
  if (!f) return undefined;
  const bytes = await source.readBlob(f.layer, MAX_CONFIG_BYTES).catch(() => undefined); // inspect shows what it can
  const doc = bytes && (safeJson(bytes) as Record<string, unknown> | undefined);
  const v = CONTEXT_KEYS.map((k) => doc?.[k]).find((x) => typeof x === 'number' && Number.isSafeInteger(x) && x > 0);
  return v as number | undefined;
}

function safeJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
}
