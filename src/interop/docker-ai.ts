/**
 * Docker Model Runner (DMR) artifacts: `application/vnd.docker.ai.*` media types, the config
 * (v0.1: single-file GGUF/DDUF builds; v0.2: one layer per file of a directory) and how each layer
 * reads as a model file. Pure: no I/O.
 * Reference: ../shared/reference/peer-formats.md §1 (docker/model-runner pkg/distribution/types).
 *
 * Layers are the raw files (digest = diffID). Current builders annotate each layer with
 * `org.cncf.model.filepath`; artifacts of the archived model-distribution builder carry no layer
 * annotations, so their files get the names DMR's own runtime bundle uses (`model.gguf`,
 * `model-00001-of-00002.gguf`, `template.jinja`, ...), in layer order.
 */
import { basename } from 'node:path';
import type { Descriptor } from '../oci/descriptor.js';
import type { LayerKind } from '../oci/media-types.js';

export const DOCKER_AI_CONFIG_V01 = 'application/vnd.docker.ai.model.config.v0.1+json';
export const DOCKER_AI_CONFIG_V02 = 'application/vnd.docker.ai.model.config.v0.2+json';
export const DOCKER_AI_GGUF = 'application/vnd.docker.ai.gguf.v3';
export const DOCKER_AI_SAFETENSORS = 'application/vnd.docker.ai.safetensors';
export const DOCKER_AI_DDUF = 'application/vnd.docker.ai.dduf';
export const DOCKER_AI_LICENSE = 'application/vnd.docker.ai.license';
export const DOCKER_AI_MMPROJ = 'application/vnd.docker.ai.mmproj';
export const DOCKER_AI_CHAT_TEMPLATE = 'application/vnd.docker.ai.chat.template.jinja';
export const DOCKER_AI_MODEL_FILE = 'application/vnd.docker.ai.model.file';
export const DOCKER_AI_VLLM_CONFIG_TAR = 'application/vnd.docker.ai.vllm.config.tar';
export const DOCKER_AI_DIR_TAR = 'application/vnd.docker.ai.dir.tar';
/** DMR's own ModelPack extension (older `--format cncf` output, not in model-spec); DMR still reads it. */
export const CNCF_WEIGHT_GGUF = 'application/vnd.cncf.model.weight.v1.gguf';
export const CNCF_WEIGHT_SAFETENSORS = 'application/vnd.cncf.model.weight.v1.safetensors';
/** `"false"` on every layer DMR's builder writes: the media type was chosen from the file, not guessed. */
export const ANNOTATION_MEDIATYPE_UNTESTED = 'org.cncf.model.file.mediatype.untested';

export type DockerAiVersion = 'v0.1' | 'v0.2';

export function isDockerAiConfig(mediaType: string): boolean {
  return mediaType === DOCKER_AI_CONFIG_V01 || mediaType === DOCKER_AI_CONFIG_V02;
}

/** A DMR artifact: by config media type, or (config of another type) any `vnd.docker.ai` layer. */
export function isDockerAiManifest(m: { config: Descriptor; layers: Descriptor[] }): boolean {
  return isDockerAiConfig(m.config.mediaType) || m.layers.some((l) => l.mediaType.startsWith('application/vnd.docker.ai.'));
}

export interface ForeignLayer {
  kind: LayerKind | 'other';
  encoding: 'raw' | 'tar';
}

/** How a DMR layer reads as a model file; `path` (when known) tells a README from a config file. */
export function dockerAiLayerKind(mediaType: string, path?: string): ForeignLayer {
  switch (mediaType) {
    case DOCKER_AI_GGUF:
    case DOCKER_AI_SAFETENSORS:
    case DOCKER_AI_DDUF:
    case DOCKER_AI_MMPROJ:
    case CNCF_WEIGHT_GGUF:
    case CNCF_WEIGHT_SAFETENSORS:
      return { kind: 'weight', encoding: 'raw' };
    case DOCKER_AI_LICENSE:
      return { kind: 'doc', encoding: 'raw' };
    case DOCKER_AI_CHAT_TEMPLATE:
      return { kind: 'config', encoding: 'raw' };
    case DOCKER_AI_MODEL_FILE:
      return { kind: path !== undefined && /\.md$/i.test(path) ? 'doc' : 'config', encoding: 'raw' };
    case DOCKER_AI_VLLM_CONFIG_TAR:
    case DOCKER_AI_DIR_TAR:
      return { kind: 'config', encoding: 'tar' };
    default:
      return { kind: 'other', encoding: 'raw' };
  }
}

/**
 * Names for layers that carry no path annotation (the archived builder), in layer order: GGUF and
 * safetensors shards as DMR's bundle names them, one name per other media type, a numeric suffix
 * for repeats (`LICENSE`, `LICENSE-2`). Names in `taken` (annotated layers) are skipped.
 */
export function dockerAiFallbackNames(layers: Descriptor[], taken: Set<string>): (string | undefined)[] {
  const counts = new Map<string, number>();
  for (const l of layers) counts.set(l.mediaType, (counts.get(l.mediaType) ?? 0) + 1);
  const seen = new Map<string, number>();
  const unique = uniqueNames(taken);
  return layers.map((l) => {
    const i = (seen.get(l.mediaType) ?? 0) + 1;
    seen.set(l.mediaType, i);
    const base = baseName(l.mediaType, i, counts.get(l.mediaType)!, l.digest);
    return base === undefined ? undefined : unique(base);
  });
}

function baseName(mediaType: string, i: number, n: number, digest: string): string | undefined {
  const shard = (ext: string) => (n === 1 ? `model.${ext}` : `model-${pad5(i)}-of-${pad5(n)}.${ext}`);
  switch (mediaType) {
    case DOCKER_AI_GGUF:
    case CNCF_WEIGHT_GGUF:
      return shard('gguf');
    case DOCKER_AI_SAFETENSORS:
    case CNCF_WEIGHT_SAFETENSORS:
      return shard('safetensors');
    case DOCKER_AI_DDUF:
      return 'model.dduf';
    case DOCKER_AI_MMPROJ:
      return 'mmproj.gguf';
    case DOCKER_AI_LICENSE:
      return 'LICENSE';
    case DOCKER_AI_CHAT_TEMPLATE:
      return 'template.jinja';
    case DOCKER_AI_MODEL_FILE:
      return `file-${digest.slice(digest.indexOf(':') + 1, digest.indexOf(':') + 13)}`;
    case DOCKER_AI_VLLM_CONFIG_TAR:
      return 'config.tar';
    case DOCKER_AI_DIR_TAR:
      return 'dir.tar';
    default:
      return undefined;
  }
}

const pad5 = (n: number) => String(n).padStart(5, '0');

/** `LICENSE` → `LICENSE-2`, `model.gguf` → `model-2.gguf`. */
export function withSuffix(name: string, n: number): string {
  const dot = name.lastIndexOf('.');
  return dot > 0 ? `${name.slice(0, dot)}-${n}${name.slice(dot)}` : `${name}-${n}`;
}

/**
 * Names not yet used (nor in `taken`): `base`, else the first free of `base-2`, `base-3`, … Each
 * base remembers where its suffixes got to, so a manifest of thousands of layers of one type
 * costs linear time (a 4 MiB manifest holds some 35,000 layers), not quadratic.
 */
export function uniqueNames(taken: Iterable<string> = []): (base: string) => string {
  const used = new Set(taken);
  const next = new Map<string, number>();
  return (base) => {
    let name = base;
    if (used.has(name)) {
      let n = next.get(base) ?? 2;
      while (used.has((name = withSuffix(base, n)))) n++;
      next.set(base, n + 1);
    }
    used.add(name);
    return name;
  };
}

/** The config blob (`pkg/distribution/types/config.go`). All `config.*` keys are optional. */
export interface DockerAiConfigFile {
  config: {
    format?: string;
    quantization?: string;
    parameters?: string;
    architecture?: string;
    size?: string;
    gguf?: Record<string, string>;
    safetensors?: Record<string, string>;
    context_size?: number;
  };
  descriptor: { created?: string };
  rootfs: { type: 'rootfs'; diff_ids: string[] };
}

export interface DockerAiConfigInput {
  format: string;
  quantization?: string | undefined;
  parameters?: string | undefined;
  architecture?: string | undefined;
  size?: string | undefined;
  contextSize?: number | undefined;
  /** RFC 3339; left out when unknown, so the same input gives the same digest. */
  created?: string | undefined;
  diffIds: string[];
}

/** The config JSON; empty values are left out (DMR marks them omitempty). */
export function buildDockerAiConfig(input: DockerAiConfigInput): DockerAiConfigFile {
  const nonEmpty = (v: string | undefined) => (v === undefined || v === '' ? undefined : v);
  const config: DockerAiConfigFile['config'] = { format: input.format };
  if (nonEmpty(input.quantization)) config.quantization = input.quantization!;
  if (nonEmpty(input.parameters)) config.parameters = input.parameters!;
  if (nonEmpty(input.architecture)) config.architecture = input.architecture!;
  if (nonEmpty(input.size)) config.size = input.size!;
  if (input.contextSize !== undefined) config.context_size = input.contextSize;
  return {
    config,
    descriptor: nonEmpty(input.created) ? { created: input.created! } : {},
    rootfs: { type: 'rootfs', diff_ids: [...input.diffIds] },
  };
}

/** The media type a model file gets in a DMR artifact, chosen as DMR's builder does (by name). */
export function dockerAiMediaTypeFor(path: string, kind: LayerKind | 'other', encoding: string): string {
  if (encoding !== 'raw') return DOCKER_AI_DIR_TAR;
  const name = basename(path).toLowerCase();
  if (kind === 'weight') {
    if (name.endsWith('.gguf')) return name.includes('mmproj') ? DOCKER_AI_MMPROJ : DOCKER_AI_GGUF;
    if (name.endsWith('.safetensors')) return DOCKER_AI_SAFETENSORS;
    if (name.endsWith('.dduf')) return DOCKER_AI_DDUF;
    return DOCKER_AI_MODEL_FILE;
  }
  if (/licen[cs]e|copying|notice/.test(name)) return DOCKER_AI_LICENSE;
  if (name.endsWith('.jinja') || name.includes('chat_template')) return DOCKER_AI_CHAT_TEMPLATE;
  return DOCKER_AI_MODEL_FILE;
}

/** DMR prints sizes as gguf-parser does: `256.35MiB` (GGUF, binary) or `256.35MB` (safetensors, decimal). */
export function dockerAiSize(bytes: number, binary: boolean): string {
  const base = binary ? 1024 : 1000;
  const units = binary ? ['B', 'KiB', 'MiB', 'GiB', 'TiB'] : ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let u = 0;
  while (v >= base && u < units.length - 1) {
    v /= base;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(2)}${units[u]}`;
}
