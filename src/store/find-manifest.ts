/**
 * What a reference names in the local store:
 * - `name[:tag]`: the entry of index.json with that name;
 * - `name[:tag]@sha256:…`: a manifest of that repository: an entry of the repository (of that tag,
 *   when one is given) with that digest, or a manifest listed by an index stored under it. A
 *   digest stored only under another name is refused, as a registry refuses it in another
 *   repository: `nonexist/foo@sha256:…` names nothing;
 * - bare `sha256:…`: any manifest in the store (a named one, else a manifest blob in the pool).
 */
import { PackError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { parseDigest } from '../oci/digest.js';
import { MAX_MANIFEST_BYTES, parseManifest } from '../oci/manifest.js';
import { OCI_INDEX, OCI_MANIFEST, isIndexMediaType } from '../oci/media-types.js';
import { formatReference, parseReference, referenceName, type Reference } from '../oci/reference.js';
import { refNameOf, type IndexDoc } from './index-file.js';
import type { LocalStore } from './store.js';

/** True for `alg:hex` as a digest (not a name with a tag). */
export function isBareDigest(reference: string): boolean {
  try {
    parseDigest(reference);
    return true;
  } catch {
    return false;
  }
}

export async function findManifest(store: LocalStore, index: IndexDoc, reference: string): Promise<Descriptor> {
  if (isBareDigest(reference)) {
    // A model literally named `sha256:<hex>` (a repository `sha256`) keeps its name; else a digest.
    const hit = index.manifests.find((m) => refNameOf(m) === reference) ?? index.manifests.find((m) => m.digest === reference);
    return hit ? strip(hit) : sniff(store, reference);
  }
  const ref = parseReference(reference);
  if (ref.digest) return inRepository(store, index, ref, reference);
  const name = tagName(ref);
  const hit = index.manifests.find((m) => refNameOf(m) === name);
  if (!hit) {
    throw new PackError('NOT_FOUND', `${name}: no such model in the store`, { hint: 'see `mpk ls` for what is there, or build or pull it' });
  }
  return strip(hit);
}

/** A stored entry with that digest under the index `d` (levels deep at most), or undefined. */
async function underIndex(store: LocalStore, d: Descriptor, digest: string, levels: number): Promise<Descriptor | undefined> {
  if (levels <= 0 || !isIndexMediaType(d.mediaType)) return undefined;
  const parsed = await store.readManifest(d).catch(() => undefined);
  if (parsed?.kind !== 'index') return undefined;
  const child = parsed.index.manifests.find((c) => c.digest === digest);
  if (child && (await store.blobs.exists(child))) return child;
  for (const c of parsed.index.manifests) {
    const hit = await underIndex(store, c, digest, levels - 1);
    if (hit) return hit;
  }
  return undefined;
}

/** The stored name of a reference: `name:tag` (no digest). */
export function tagName(ref: Reference): string {
  return formatReference({ ...ref, digest: undefined } as Reference);
}

/** The index entries that `ref` (a repository, with or without a tag) names. */
export function entriesOf(index: IndexDoc, ref: Reference): Descriptor[] {
  const repo = referenceName(ref);
  return index.manifests.filter((m) => {
    const n = refNameOf(m);
    if (n === undefined) return false;
    let stored: Reference;
    try {
      stored = parseReference(n);
    } catch {
      return false;
    }
    return referenceName(stored) === repo && (!ref.tag || stored.tag === ref.tag);
  });
}

async function inRepository(store: LocalStore, index: IndexDoc, ref: Reference, reference: string): Promise<Descriptor> {
  const entries = entriesOf(index, ref);
  const direct = entries.find((m) => m.digest === ref.digest);
  if (direct) return strip(direct);
  // A platform manifest of an index stored under this name belongs to the repository too (at any
  // of the 8 levels an index may nest).
  for (const m of entries) {
    const child = await underIndex(store, strip(m), ref.digest!, 8);
    if (child) return strip(child);
  }
  const where = ref.tag ? tagName(ref) : referenceName(ref);
  const elsewhere = index.manifests.filter((m) => m.digest === ref.digest).map(refNameOf).filter((n) => n !== undefined);
  throw new PackError('NOT_FOUND', `${reference}: ${where} has no manifest ${ref.digest} in the store`, {
    hint: elsewhere.length
      ? `that digest is stored as ${elsewhere.slice(0, 3).join(', ')}: use that name, or the digest alone`
      : entries.length
        ? `see \`mpk ls --digests\` for the digests of ${referenceName(ref)}`
        : `no model of ${referenceName(ref)} is stored; see \`mpk ls\``,
  });
}

/** Describes a manifest blob known only by digest, from its own mediaType field. */
async function sniff(store: LocalStore, digest: string): Promise<Descriptor> {
  const size = await store.blobs.size(digest);
  if (size === undefined) {
    throw new PackError('NOT_FOUND', `${digest}: no manifest with that digest in the store`, { hint: 'see `mpk ls --digests`' });
  }
  const probe: Descriptor = { mediaType: OCI_MANIFEST, digest, size };
  let bytes: Buffer;
  try {
    bytes = await store.blobs.read(probe, MAX_MANIFEST_BYTES);
  } catch (e) {
    if ((e as PackError).code === 'SIZE_EXCEEDS_LIMIT') throw notManifest(digest);
    throw e;
  }
  let parsed;
  try {
    parsed = parseManifest(bytes, undefined, digest);
  } catch {
    throw notManifest(digest);
  }
  return { mediaType: parsed.mediaType, digest, size };
}

function notManifest(digest: string): PackError {
  return new PackError('NOT_FOUND', `${digest}: is a blob in the store, not a manifest`, { hint: 'name a model by its manifest digest (`mpk ls --digests`)' });
}

export function strip(d: Descriptor): Descriptor {
  const out: Descriptor = { mediaType: d.mediaType ?? OCI_INDEX, digest: d.digest, size: d.size };
  if (d.artifactType) out.artifactType = d.artifactType;
  return out;
}
