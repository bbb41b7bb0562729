/**
 * Reads a manifest as a model: which family it is written in, and each layer's file path, kind,
 * encoding and file metadata. Reads both `vnd.cncf` and legacy `vnd.cnai`, and the artifacts of
 * Docker Model Runner (`vnd.docker.ai`) and Ollama (`vnd.ollama.image`): see src/interop/.
 */
import { PackError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { Manifest } from '../oci/manifest.js';
import {
  ANNOTATION_TITLE,
  OCI_IMAGE_CONFIG,
  fileMetadataAnnotation,
  filepathAnnotation,
  modelArtifactFamily,
  modelConfigFamily,
  parseLayerMediaType,
  type LayerEncoding,
  type LayerKind,
  type ModelFamily,
} from '../oci/media-types.js';
import { safeRelativePath } from '../internal/safe-path.js';
import { CNCF_WEIGHT_GGUF, CNCF_WEIGHT_SAFETENSORS, dockerAiFallbackNames, dockerAiLayerKind, isDockerAiManifest } from '../interop/docker-ai.js';
import { OLLAMA_PREFIX, isOllamaManifest, ollamaFiles, ollamaLayerKind } from '../interop/ollama.js';

/** `org.cncf.model.file.metadata+json`: the file's attributes. */
export interface FileMetadata {
  name?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  mtime?: string;
  typeflag?: number;
}

export interface ModelFile {
  /** Safe relative path (checked by safeRelativePath). */
  path: string;
  kind: LayerKind | 'other';
  encoding: LayerEncoding | 'other';
  layer: Descriptor;
  metadata?: FileMetadata;
}

/** `docker-ai`: a Docker Model Runner artifact; `ollama`: an Ollama model (Docker v2 manifest). */
export type ArtifactFormat = 'modelpack' | 'docker-ai' | 'ollama' | 'oci-image' | 'other';

export interface ModelView {
  format: ArtifactFormat;
  /** cncf or cnai for ModelPack artifacts. */
  family?: ModelFamily;
  files: ModelFile[];
}

/** The ModelPack family of a manifest, by artifactType, else by config media type. */
export function manifestFamily(m: Manifest): ModelFamily | undefined {
  return modelArtifactFamily(m.artifactType) ?? modelConfigFamily(m.config.mediaType);
}

/**
 * The files of a manifest. A layer whose path annotation is unsafe makes the whole view fail
 * (UNSAFE_PATH) so nothing is extracted from a malicious manifest. Layers without a path are
 * named by their title or, failing that, by their digest.
 */
export function modelView(m: Manifest): ModelView {
  const family = manifestFamily(m);
  const format: ArtifactFormat = family
    ? 'modelpack'
    : isDockerAiManifest(m)
      ? 'docker-ai'
      : isOllamaManifest(m)
        ? 'ollama'
        : m.config.mediaType === OCI_IMAGE_CONFIG
          ? 'oci-image'
          : 'other';
  const annotated = m.layers.map((layer) => {
    const a = layer.annotations ?? {};
    return a[filepathAnnotation('cncf')] ?? a[filepathAnnotation('cnai')] ?? a[ANNOTATION_TITLE];
  });
  const foreign = foreignNames(format, m, annotated);
  const seen = new Set<string>();
  const files = m.layers.map((layer, i): ModelFile => {
    const where = `layer ${i} (${layer.digest})`;
    const raw = annotated[i] ?? foreign[i];
    const path = raw === undefined ? layer.digest.replace(':', '-') : safeRelativePath(raw, where);
    const { kind, encoding } = layerKind(format, layer.mediaType, path);
    if (seen.has(path) && encoding === 'raw') {
      throw new PackError('INVALID_MANIFEST', `${where}: path ${path} appears twice`, {
        hint: 'the artifact is malformed: two layers claim the same file',
      });
    }
    seen.add(path);
    const a = layer.annotations ?? {};
    const metaText = a[fileMetadataAnnotation('cncf')] ?? a[fileMetadataAnnotation('cnai')];
    const file: ModelFile = { path, kind, encoding, layer };
    const metadata = metaText === undefined ? undefined : parseFileMetadata(metaText);
    if (metadata) file.metadata = metadata;
    return file;
  });
  const view: ModelView = { format, files };
  if (family) view.family = family;
  return view;
}

/** Paths for layers without a path annotation: DMR's fallback names, Ollama's names by media type. */
function foreignNames(format: ArtifactFormat, m: Manifest, annotated: (string | undefined)[]): (string | undefined)[] {
  if (format === 'docker-ai') {
    const taken = new Set(annotated.filter((p): p is string => p !== undefined));
    const names = dockerAiFallbackNames(m.layers, taken);
    return names.map((n, i) => (annotated[i] === undefined ? n : undefined));
  }
  if (format === 'ollama') return ollamaFiles(m.layers).map((f) => f.path);
  return m.layers.map(() => undefined);
}

function layerKind(format: ArtifactFormat, mediaType: string, path: string): Pick<ModelFile, 'kind' | 'encoding'> {
  const parsed = parseLayerMediaType(mediaType);
  if (parsed) return { kind: parsed.kind, encoding: parsed.encoding };
  if (format === 'docker-ai' || mediaType === CNCF_WEIGHT_GGUF || mediaType === CNCF_WEIGHT_SAFETENSORS) {
    const k = dockerAiLayerKind(mediaType, path);
    if (k.kind !== 'other') return k;
  }
  if (format === 'ollama' && mediaType.startsWith(OLLAMA_PREFIX)) return { kind: ollamaLayerKind(mediaType), encoding: 'raw' };
  return { kind: 'other', encoding: 'other' };
}

/** Lenient: a malformed metadata annotation is ignored (it only restores modes and times). */
function parseFileMetadata(text: string): FileMetadata | undefined {
  try {
    const o = JSON.parse(text) as Record<string, unknown>;
    if (!o || typeof o !== 'object') return undefined;
    const md: FileMetadata = {};
    const num = (v: unknown) => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined);
    if (typeof o.name === 'string') md.name = o.name;
    if (num(o.mode) !== undefined) md.mode = num(o.mode)!;
    if (num(o.uid) !== undefined) md.uid = num(o.uid)!;
    if (num(o.gid) !== undefined) md.gid = num(o.gid)!;
    if (num(o.size) !== undefined) md.size = num(o.size)!;
    if (typeof o.mtime === 'string') md.mtime = o.mtime;
    if (num(o.typeflag) !== undefined) md.typeflag = num(o.typeflag)!;
    return md;
  } catch {
    return undefined;
  }
}

/** Typeflag of a regular file: modctl writes 0, Go's tar.TypeReg is '0' (48); accept both. */
export function isRegularTypeflag(t: number | undefined): boolean {
  return t === undefined || t === 0 || t === 48;
}
