/**
 * The model a signature is about, read the same way for signing and verifying: the manifest a
 * reference resolves to (pinned by digest from here on), its files as model-view names them, and
 * the repository name. Local references read the store; HOST/NAME references the registry.
 */
import { PackError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { parseManifest, type Manifest } from '../oci/manifest.js';
import { parseReference } from '../oci/reference.js';
import { modelView, type ModelFile } from '../modelpack/model-view.js';
import type { RemoteRepository } from '../registry/repository.js';
import { isBareDigest } from '../store/find-manifest.js';
import type { LocalStore } from '../store/store.js';

export interface ModelSubject {
  descriptor: Descriptor;
  manifest: Manifest;
  files: ModelFile[];
  /** Repository name without the registry host (a model copied between registries keeps it). */
  name: string;
}

function checkModel(reference: string, descriptor: Descriptor, bytes: Buffer): ModelSubject['manifest'] {
  const parsed = parseManifest(bytes, descriptor.mediaType, descriptor.digest);
  if (parsed.kind === 'index') {
    throw new PackError('UNSUPPORTED', `${reference}: an index of variants; signatures are per model`, {
      hint: 'sign or verify each variant by digest: mpk inspect REF lists them, then REF@sha256:…',
    });
  }
  return parsed.manifest;
}

export function nameOf(reference: string): string {
  return isBareDigest(reference) ? reference : parseReference(reference).repository;
}

export async function localSubject(store: LocalStore, reference: string): Promise<ModelSubject> {
  const descriptor = await store.resolve(reference);
  const bytes = await store.blobs.read(descriptor, 4 * 1024 * 1024);
  return subjectOf(reference, descriptor, bytes);
}

export async function remoteSubject(repo: RemoteRepository, reference: string, opts: { signal?: AbortSignal } = {}): Promise<ModelSubject> {
  const ref = parseReference(reference);
  const descriptor = await repo.resolve(ref.digest ?? ref.tag ?? 'latest', opts);
  const { bytes } = await repo.fetchManifest(descriptor, opts);
  return subjectOf(reference, descriptor, bytes);
}

export function subjectOf(reference: string, descriptor: Descriptor, bytes: Buffer): ModelSubject {
  const manifest = checkModel(reference, descriptor, bytes);
  const plain: Descriptor = { mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size };
  return { descriptor: plain, manifest, files: modelView(manifest).files, name: nameOf(reference) };
}
