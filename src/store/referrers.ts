/**
 * Referrers in the local store. An OCI image layout has no referrers API; the image-layout spec
 * lets `index.json` list manifests with no `org.opencontainers.image.ref.name`, and a referrer
 * is kept that way (as oras-go's OCI store does): an entry with no name whose manifest has a
 * `subject`. Such entries are no models (`list()` shows named entries only) and prune keeps
 * them only while their subject is kept (see prune.ts).
 * Reference: https://github.com/opencontainers/image-spec/blob/v1.1.1/image-layout.md#indexjson-file
 */
import { PackError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { refNameOf, readIndex, updateIndex, type IndexDoc } from './index-file.js';
import { strip } from './find-manifest.js';
import type { LocalStore } from './store.js';

/** Unnamed index entries whose manifest has a subject: entry digest → { entry, subject digest }. */
export async function unnamedReferrers(store: LocalStore, index: IndexDoc): Promise<Map<string, { entry: Descriptor; subject: string }>> {
  const out = new Map<string, { entry: Descriptor; subject: string }>();
  for (const m of index.manifests) {
    if (refNameOf(m) !== undefined || out.has(m.digest)) continue;
    const parsed = await store.readManifest(strip(m)).catch(() => undefined);
    const subject = parsed?.kind === 'manifest' ? parsed.manifest.subject : parsed?.index.subject;
    if (subject) out.set(m.digest, { entry: m, subject: subject.digest });
  }
  return out;
}

/** Records a stored referrer manifest (unnamed) in index.json; its subject and blobs must be stored. */
export async function addLocalReferrer(store: LocalStore, desc: Descriptor, subject: Descriptor): Promise<void> {
  await updateIndex(store.root, async (doc) => {
    // Under the lock: a concurrent prune cannot take the subject or the blobs in between.
    if (!(await store.blobs.exists(subject))) throw new PackError('NOT_FOUND', `${subject.digest}: the subject is no longer in the store`);
    if (!(await store.exists(desc))) throw new PackError('NOT_FOUND', `${desc.digest}: referrer or one of its blobs missing from the store`, { hint: 'run the command again' });
    if (doc.manifests.some((m) => m.digest === desc.digest && refNameOf(m) === undefined)) return;
    const entry: Descriptor = { mediaType: desc.mediaType, digest: desc.digest, size: desc.size };
    if (desc.artifactType) entry.artifactType = desc.artifactType;
    doc.manifests.push(entry);
  });
}

/** The stored referrers of `subject` (optionally of one artifact type), by digest order. */
export async function localReferrers(store: LocalStore, subject: string, artifactType?: string): Promise<Descriptor[]> {
  const all = await unnamedReferrers(store, await readIndex(store.root));
  return [...all.values()]
    .filter((r) => r.subject === subject && (!artifactType || r.entry.artifactType === artifactType))
    .map((r) => strip(r.entry));
}
