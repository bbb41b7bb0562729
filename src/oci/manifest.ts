/**
 * OCI image manifest and index: types, parsing with validation, and child descriptors.
 * Reference: https://github.com/opencontainers/image-spec/blob/v1.1.1/manifest.md
 * Reference: https://github.com/opencontainers/image-spec/blob/v1.1.1/image-index.md
 */
import { PackError } from '../errors.js';
import { validateAnnotations, validateDescriptor, isMediaType, type Descriptor } from './descriptor.js';
import { OCI_INDEX, OCI_MANIFEST, isIndexMediaType, isManifestMediaType } from './media-types.js';

/** Manifests larger than this are refused (the limit registries apply). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export interface Manifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface Index {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export type ParsedManifest = { kind: 'manifest'; mediaType: string; manifest: Manifest } | { kind: 'index'; mediaType: string; index: Index };

/**
 * What parseManifest answered, by the bytes object it parsed (and the media type it was given). A
 * pull hands the same verified bytes to the selection, the walk and the store's tag check: a
 * 2,000-layer manifest took ~25 ms to parse and validate each time here. The answer is shared:
 * callers must not change it (or the bytes).
 */
const parsedBefore = new WeakMap<Uint8Array, { mediaType: string | undefined; parsed: ParsedManifest }>();

/**
 * Parses and validates manifest or index bytes. `mediaType` is the descriptor's (or the
 * Content-Type); when absent, the document's own `mediaType` field decides. The answer is not to
 * be changed: the same bytes parsed again give the same object.
 */
export function parseManifest(bytes: Uint8Array, mediaType?: string, where = 'manifest'): ParsedManifest {
  const before = parsedBefore.get(bytes);
  if (before && before.mediaType === mediaType) return before.parsed;
  const parsed = parseUncached(bytes, mediaType, where);
  parsedBefore.set(bytes, { mediaType, parsed });
  return parsed;
}

function parseUncached(bytes: Uint8Array, mediaType: string | undefined, where: string): ParsedManifest {
  if (bytes.byteLength > MAX_MANIFEST_BYTES) {
    throw new PackError('SIZE_EXCEEDS_LIMIT', `${where}: ${bytes.byteLength} bytes is over the ${MAX_MANIFEST_BYTES}-byte manifest limit`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (e) {
    throw new PackError('INVALID_MANIFEST', `${where}: not JSON (${(e as Error).message})`, { cause: e });
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new PackError('INVALID_MANIFEST', `${where}: not a JSON object`);
  const o = doc as Record<string, unknown>;
  if (o.schemaVersion !== 2) throw new PackError('INVALID_MANIFEST', `${where}: schemaVersion must be 2`);
  if (o.mediaType !== undefined && !isMediaType(o.mediaType)) throw new PackError('INVALID_MANIFEST', `${where}: invalid mediaType`);
  const declared = o.mediaType as string | undefined;
  if (mediaType && declared && mediaType !== declared) {
    throw new PackError('INVALID_MANIFEST', `${where}: mediaType ${declared} does not match the descriptor's ${mediaType}`);
  }
  const type = mediaType ?? declared ?? (Array.isArray(o.manifests) ? OCI_INDEX : OCI_MANIFEST);
  if (o.artifactType !== undefined && !isMediaType(o.artifactType)) throw new PackError('INVALID_MANIFEST', `${where}: invalid artifactType`);
  if (o.annotations !== undefined) validateAnnotations(o.annotations, where);
  if (o.subject !== undefined) validateDescriptor(o.subject, `${where}: subject`);
  if (isManifestMediaType(type)) {
    validateDescriptor(o.config, `${where}: config`);
    if (!Array.isArray(o.layers)) throw new PackError('INVALID_MANIFEST', `${where}: layers must be an array`);
    o.layers.forEach((l, i) => validateDescriptor(l, `${where}: layers[${i}]`));
    if ('manifests' in o) throw new PackError('INVALID_MANIFEST', `${where}: a manifest has no "manifests" field`);
    return { kind: 'manifest', mediaType: type, manifest: o as unknown as Manifest };
  }
  if (isIndexMediaType(type)) {
    if (!Array.isArray(o.manifests)) throw new PackError('INVALID_MANIFEST', `${where}: manifests must be an array`);
    o.manifests.forEach((m, i) => validateDescriptor(m, `${where}: manifests[${i}]`));
    if ('layers' in o || 'config' in o) throw new PackError('INVALID_MANIFEST', `${where}: an index has no "config" or "layers"`);
    return { kind: 'index', mediaType: type, index: o as unknown as Index };
  }
  throw new PackError('INVALID_MEDIA_TYPE', `${where}: ${type} is not a manifest or index media type`);
}

/** The descriptors a node points at: subject, config and layers, or an index's manifests. */
export function childDescriptors(p: ParsedManifest): Descriptor[] {
  if (p.kind === 'manifest') {
    const m = p.manifest;
    return [...(m.subject ? [m.subject] : []), m.config, ...m.layers];
  }
  return [...(p.index.subject ? [p.index.subject] : []), ...p.index.manifests];
}

export function isManifestLike(mediaType: string): boolean {
  return isManifestMediaType(mediaType) || isIndexMediaType(mediaType);
}
