/** A model in the store, read once for a conversion or an export: manifest bytes, view and metadata. */
import { PackError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { Manifest } from '../oci/manifest.js';
import { modelView, type ModelView } from '../modelpack/model-view.js';
import { MAX_MANIFEST_BYTES, parseManifest } from '../oci/manifest.js';
import type { LocalStore } from '../store/store.js';
import { modelMeta, type ModelMeta } from './metadata.js';

/** Configs larger than this are not read (they are a few hundred bytes). */
const MAX_CONFIG_BYTES = 1024 * 1024;

export interface LoadedModel {
  reference: string;
  descriptor: Descriptor;
  manifest: Manifest;
  manifestBytes: Buffer;
  view: ModelView;
  meta: ModelMeta;
}

export async function loadModel(store: LocalStore, reference: string): Promise<LoadedModel> {
  const descriptor = await store.resolve(reference);
  const manifestBytes = await store.blobs.read(descriptor, MAX_MANIFEST_BYTES);
  const parsed = parseManifest(manifestBytes, descriptor.mediaType, descriptor.digest);
  if (parsed.kind !== 'manifest') {
    throw new PackError('UNSUPPORTED', `${reference}: is an index of several manifests`, { hint: 'give one of them by digest (mpk inspect shows them)' });
  }
  const view = modelView(parsed.manifest);
  if (view.format === 'oci-image' || view.format === 'other') {
    throw new PackError('UNSUPPORTED', `${reference}: is not a model (config ${parsed.manifest.config.mediaType})`, {
      hint: 'give a ModelPack, Docker Model Runner or Ollama model (mpk ls shows their format)',
    });
  }
  let meta: ModelMeta = {};
  const c = parsed.manifest.config;
  if (c.size <= MAX_CONFIG_BYTES && (await store.exists(c))) meta = modelMeta(view.format, await store.blobs.read(c, MAX_CONFIG_BYTES));
  return { reference, descriptor, manifest: parsed.manifest, manifestBytes, view, meta };
}
