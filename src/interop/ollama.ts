/**
 * Ollama artifacts: a Docker v2 manifest whose config is Ollama's ConfigV2 JSON (labelled
 * `application/vnd.docker.container.image.v1+json`) and whose layers are raw
 * `application/vnd.ollama.image.*` blobs. Pure: no I/O.
 * Reference: ../shared/reference/peer-formats.md §2 (ollama manifest/, types/model/config.go).
 *
 * The file a layer becomes is implied by its media type (Ollama keeps no paths); mpk names them
 * `model.gguf`, `mmproj.gguf`, `adapter.gguf`, `template.gotmpl` (a Go template, not Jinja),
 * `system.txt`, `params.json`, `messages.json`, `LICENSE`, with `-2`, `-3` for repeats. Per-tensor
 * and side-JSON layers carry their own `name`, used as the path.
 */
import type { Descriptor } from '../oci/descriptor.js';
import { DOCKER_MANIFEST, type LayerKind } from '../oci/media-types.js';
import { uniqueNames, type ForeignLayer } from './docker-ai.js';

export const OLLAMA_CONFIG = 'application/vnd.docker.container.image.v1+json';
export const OLLAMA_PREFIX = 'application/vnd.ollama.image.';
export const OLLAMA_MODEL = `${OLLAMA_PREFIX}model`;
export const OLLAMA_PROJECTOR = `${OLLAMA_PREFIX}projector`;
export const OLLAMA_ADAPTER = `${OLLAMA_PREFIX}adapter`;
export const OLLAMA_TEMPLATE = `${OLLAMA_PREFIX}template`;
export const OLLAMA_SYSTEM = `${OLLAMA_PREFIX}system`;
export const OLLAMA_PARAMS = `${OLLAMA_PREFIX}params`;
export const OLLAMA_MESSAGES = `${OLLAMA_PREFIX}messages`;
export const OLLAMA_LICENSE = `${OLLAMA_PREFIX}license`;
/** A newer Ollama writes this index type for multi-runner models; mpk does not read it. */
export const OLLAMA_MANIFEST_LIST = 'application/vnd.ollama.manifest.list.v2+json';

interface OllamaLayerType {
  kind: LayerKind | 'other';
  /** File name, when the layer has no `name` of its own. */
  file: string;
}

const TYPES: Record<string, OllamaLayerType> = {
  model: { kind: 'weight', file: 'model.gguf' },
  projector: { kind: 'weight', file: 'mmproj.gguf' },
  adapter: { kind: 'weight', file: 'adapter.gguf' },
  draft: { kind: 'weight', file: 'draft.gguf' },
  tensor: { kind: 'weight', file: 'tensor.bin' },
  template: { kind: 'config', file: 'template.gotmpl' },
  prompt: { kind: 'config', file: 'template.gotmpl' }, // the older name of template
  system: { kind: 'config', file: 'system.txt' },
  params: { kind: 'config', file: 'params.json' },
  messages: { kind: 'config', file: 'messages.json' },
  json: { kind: 'config', file: 'file.json' },
  license: { kind: 'doc', file: 'LICENSE' },
};

/** Kind of an Ollama layer media type (`other` for types mpk does not know). */
export function ollamaLayerKind(mediaType: string): LayerKind | 'other' {
  if (!mediaType.startsWith(OLLAMA_PREFIX)) return 'other';
  return TYPES[mediaType.slice(OLLAMA_PREFIX.length).split(';')[0]!.trim()]?.kind ?? 'other';
}

/** An Ollama artifact: at least one `vnd.ollama.image.*` layer. */
export function isOllamaManifest(m: { layers: Descriptor[] }): boolean {
  return m.layers.some((l) => l.mediaType.startsWith(OLLAMA_PREFIX));
}

/** The layer's own `name` (Ollama's non-OCI field on tensor and json layers), if a string. */
export function ollamaLayerName(l: Descriptor): string | undefined {
  const n = (l as Descriptor & { name?: unknown }).name;
  return typeof n === 'string' && n !== '' ? n : undefined;
}

export interface OllamaFile extends ForeignLayer {
  /** Path to give the file; `fromName` when it came from the layer (check it before use). */
  path: string;
  fromName: boolean;
}

/** Each layer as a file: kind and name by media type, `-2`, `-3`... for repeats. */
export function ollamaFiles(layers: Descriptor[]): OllamaFile[] {
  const unique = uniqueNames();
  return layers.map((l) => {
    const suffix = l.mediaType.startsWith(OLLAMA_PREFIX) ? l.mediaType.slice(OLLAMA_PREFIX.length).split(';')[0]!.trim() : '';
    const t = TYPES[suffix];
    const own = ollamaLayerName(l);
    if (own !== undefined) return { kind: t?.kind ?? 'other', encoding: 'raw', path: own, fromName: true };
    const base = t?.file ?? (suffix && /^[a-z0-9.-]+$/.test(suffix) ? suffix : `blob-${l.digest.slice(l.digest.indexOf(':') + 1, l.digest.indexOf(':') + 13)}`);
    return { kind: t?.kind ?? 'other', encoding: 'raw', path: unique(base), fromName: false };
  });
}

/** The layer media type a file named by ollamaFiles maps back to (for export of converted models). */
export function ollamaMediaTypeForName(path: string): string | undefined {
  const base = path.replace(/-\d+(?=\.[^.]+$|$)/, '');
  for (const [suffix, t] of Object.entries(TYPES)) {
    if (t.file === base && suffix !== 'prompt' && suffix !== 'tensor' && suffix !== 'json') return `${OLLAMA_PREFIX}${suffix}`;
  }
  return undefined;
}

/** ConfigV2 (`types/model/config.go`): what `ollama list` and `ollama show` display. */
export interface OllamaConfig {
  model_format: string;
  model_family: string;
  model_families: string[] | null;
  model_type: string;
  file_type: string;
  architecture: string;
  os: string;
  rootfs: { type: 'layers'; diff_ids: string[] };
  context_length?: number;
}

/**
 * A ConfigV2 for a GGUF model. `architecture`/`os` are Ollama's hard-coded amd64/linux ("required
 * by spec"); `rootfs` is kept for Ollama versions before it was dropped. Key order is Ollama's.
 */
export function buildOllamaConfig(input: { family?: string | undefined; paramSize?: string | undefined; quantization?: string | undefined; diffIds: string[] }): OllamaConfig {
  const family = input.family || 'unknown';
  return {
    model_format: 'gguf',
    model_family: family,
    model_families: [family],
    model_type: input.paramSize ?? '',
    file_type: input.quantization ?? '',
    architecture: 'amd64',
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: [...input.diffIds] },
  };
}

/** Bytes as Go's json.Encoder writes them: struct key order, compact, one trailing newline. */
export function ollamaJsonBytes(value: unknown): Buffer {
  return Buffer.from(`${JSON.stringify(value)}\n`, 'utf8');
}

/** An Ollama manifest for config and layers (mediaType, digest, size only). */
export function ollamaManifestBytes(config: Descriptor, layers: Descriptor[]): Buffer {
  const plain = (d: Descriptor) => ({ mediaType: d.mediaType, digest: d.digest, size: d.size });
  return ollamaJsonBytes({ schemaVersion: 2, mediaType: DOCKER_MANIFEST, config: plain(config), layers: layers.map(plain) });
}
