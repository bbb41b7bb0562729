/**
 * Writes a ModelPack config and manifest for layers already in the store.
 * Reference: https://github.com/modelpack/model-spec/blob/main/docs/spec.md
 */
import type { Pusher } from '../content/storage.js';
import type { Descriptor } from '../oci/descriptor.js';
import { canonicalJsonBytes } from '../oci/canonical-json.js';
import { digestBytes } from '../oci/digest.js';
import type { Manifest } from '../oci/manifest.js';
import { ANNOTATION_CREATED, OCI_MANIFEST, modelConfigMediaType, modelManifestArtifactType, type ModelFamily } from '../oci/media-types.js';
import { buildModelConfig, type ModelConfig, type ModelConfigInput } from '../modelpack/config.js';

export interface PackInput extends Omit<ModelConfigInput, 'diffIds'> {
  layers: Descriptor[];
  /** Identifier family of the media types: cncf, or legacy cnai. */
  mediaTypes: ModelFamily;
  /** Manifest annotations besides the creation time (e.g. ANNOTATION_GGUF_METADATA). */
  annotations?: Record<string, string>;
}

export interface Packed {
  manifest: Descriptor;
  manifestBody: Manifest;
  config: Descriptor;
  configBody: ModelConfig;
}

/** Pushes the config, then the manifest (children before parents); returns their descriptors. */
export async function packModel(pusher: Pusher, input: PackInput): Promise<Packed> {
  const { layers, mediaTypes: family, annotations, ...meta } = input;
  // Raw layers are uncompressed, so each DiffID is the layer digest.
  const configBody = buildModelConfig({ ...meta, diffIds: layers.map((l) => l.digest) });
  const configBytes = canonicalJsonBytes(configBody);
  const config: Descriptor = { mediaType: modelConfigMediaType(family), digest: digestBytes(configBytes), size: configBytes.length };
  await pusher.push(config, configBytes);
  const manifestBody: Manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: modelManifestArtifactType(family),
    config,
    layers,
  };
  const all = { ...annotations, ...(meta.createdAt ? { [ANNOTATION_CREATED]: meta.createdAt } : {}) };
  if (Object.keys(all).length > 0) manifestBody.annotations = all;
  const bytes = canonicalJsonBytes(manifestBody);
  const manifest: Descriptor = { mediaType: OCI_MANIFEST, digest: digestBytes(bytes), size: bytes.length, artifactType: manifestBody.artifactType! };
  await pusher.push(manifest, bytes);
  return { manifest, manifestBody, config, configBody };
}
