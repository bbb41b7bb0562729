/**
 * Media types and annotation keys: OCI image-spec v1.1 and CNCF ModelPack (model-spec v0.0.7+),
 * with the legacy `vnd.cnai` family that model-spec ≤ v0.0.6 and several modctl releases write.
 * Reference: https://github.com/opencontainers/image-spec/blob/v1.1.1/media-types.md
 * Reference: https://github.com/modelpack/model-spec/blob/main/docs/spec.md
 */

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_IMAGE_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';
export const OCI_LAYOUT_VERSION = '1.0.0';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';

export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';
export const ANNOTATION_TITLE = 'org.opencontainers.image.title';
export const ANNOTATION_CREATED = 'org.opencontainers.image.created';

/**
 * mpk's extension (not in model-spec): a manifest annotation holding, as canonical JSON, the
 * metadata of the model's GGUF header (the first shard's): every key, arrays over 64 items and
 * strings over 32 KiB summarised as `{"type","elementType","length"}` / `{"type":"string","length"}`
 * (formats/gguf-metadata.ts). The ModelPack config refuses unknown fields at every level, so it
 * cannot go there; Docker Model Runner keeps the same data in its config's `gguf` map.
 */
export const ANNOTATION_GGUF_METADATA = 'org.cncf.model.gguf.metadata+json';

/**
 * mpk's annotations on the entries of a variant index (`mpk index create`), not in model-spec:
 * what selection needs without reading each variant. Quantization holds the unquantized type's
 * name (F32, F16, BF16) for a model that is not quantized; weight bytes is a decimal integer (the
 * sum of the weight layers' sizes).
 */
export const ANNOTATION_QUANTIZATION = 'org.cncf.model.quantization';
export const ANNOTATION_PRECISION = 'org.cncf.model.precision';
export const ANNOTATION_FORMAT = 'org.cncf.model.format';
export const ANNOTATION_PARAM_SIZE = 'org.cncf.model.param.size';
export const ANNOTATION_WEIGHT_BYTES = 'org.cncf.model.weight.bytes';

/** The two ModelPack identifier families: `cncf` (model-spec ≥ v0.0.7) and legacy `cnai`. */
export type ModelFamily = 'cncf' | 'cnai';
export const MODEL_FAMILIES: readonly ModelFamily[] = ['cncf', 'cnai'];

/** The five ModelPack layer kinds, in the order mpk writes them. */
export type LayerKind = 'config' | 'weight' | 'code' | 'doc' | 'dataset';
export const LAYER_KINDS: readonly LayerKind[] = ['config', 'weight', 'code', 'doc', 'dataset'];

/** The four layer encodings. `raw` is the file's own bytes. */
export type LayerEncoding = 'raw' | 'tar' | 'tar+gzip' | 'tar+zstd';
export const LAYER_ENCODINGS: readonly LayerEncoding[] = ['raw', 'tar', 'tar+gzip', 'tar+zstd'];

const KIND_SEGMENT: Record<LayerKind, string> = {
  config: 'weight.config',
  weight: 'weight',
  code: 'code',
  doc: 'doc',
  dataset: 'dataset',
};

export function modelManifestArtifactType(family: ModelFamily = 'cncf'): string {
  return `application/vnd.${family}.model.manifest.v1+json`;
}
export function modelConfigMediaType(family: ModelFamily = 'cncf'): string {
  return `application/vnd.${family}.model.config.v1+json`;
}
export function layerMediaType(kind: LayerKind, encoding: LayerEncoding = 'raw', family: ModelFamily = 'cncf'): string {
  return `application/vnd.${family}.model.${KIND_SEGMENT[kind]}.v1.${encoding}`;
}
export function filepathAnnotation(family: ModelFamily = 'cncf'): string {
  return `org.${family}.model.filepath`;
}
export function fileMetadataAnnotation(family: ModelFamily = 'cncf'): string {
  return `org.${family}.model.file.metadata+json`;
}

export interface ParsedLayerType {
  family: ModelFamily;
  kind: LayerKind;
  encoding: LayerEncoding;
}

const LAYER_RE = /^application\/vnd\.(cncf|cnai)\.model\.(weight\.config|weight|code|doc|dataset)\.v1\.(raw|tar|tar\+gzip|tar\+zstd)$/;
const SEGMENT_KIND: Record<string, LayerKind> = {
  'weight.config': 'config',
  weight: 'weight',
  code: 'code',
  doc: 'doc',
  dataset: 'dataset',
};

/** Parses a ModelPack layer media type of either family; undefined for anything else. */
export function parseLayerMediaType(mediaType: string): ParsedLayerType | undefined {
  const m = LAYER_RE.exec(mediaType);
  if (!m) return undefined;
  return { family: m[1] as ModelFamily, kind: SEGMENT_KIND[m[2]!]!, encoding: m[3] as LayerEncoding };
}

/** The family of a ModelPack config media type, or undefined. */
export function modelConfigFamily(mediaType: string): ModelFamily | undefined {
  return MODEL_FAMILIES.find((f) => modelConfigMediaType(f) === mediaType);
}

/** The family of a ModelPack manifest artifactType, or undefined. */
export function modelArtifactFamily(artifactType: string | undefined): ModelFamily | undefined {
  return MODEL_FAMILIES.find((f) => modelManifestArtifactType(f) === artifactType);
}

export function isManifestMediaType(mediaType: string): boolean {
  return mediaType === OCI_MANIFEST || mediaType === DOCKER_MANIFEST;
}
export function isIndexMediaType(mediaType: string): boolean {
  return mediaType === OCI_INDEX || mediaType === DOCKER_MANIFEST_LIST;
}
