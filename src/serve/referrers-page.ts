/**
 * One page of the referrers API from a sorted walk of a subject's entries, whatever the storage:
 * entries after `after`, those `keep` lets through, until the next would pass `maxBytes` (then
 * `next` is the last key given, for the `Link` of the next page). Unreadable entries, and those
 * whose manifest is gone (a delete cut short), are skipped by the storage's `read`.
 */
import type { Descriptor } from '../oci/descriptor.js';
import type { ParsedManifest } from '../oci/manifest.js';
import type { ReferrersPage } from './storage.js';

export async function referrersPage(
  keys: AsyncIterable<string> | Iterable<string>,
  read: (key: string) => Promise<Descriptor | undefined>,
  page: ReferrersPage,
): Promise<{ manifests: Descriptor[]; next?: string }> {
  const { after, maxBytes = Infinity, keep = () => true } = page;
  const out: Descriptor[] = [];
  let bytes = 0;
  let last = '';
  for await (const key of keys) {
    if (after !== undefined && key <= after) continue;
    const desc = await read(key).catch(() => undefined);
    if (!desc || !keep(desc)) continue;
    const size = Buffer.byteLength(JSON.stringify(desc)) + 1;
    if (out.length > 0 && bytes + size > maxBytes) return { manifests: out, next: last };
    out.push(desc);
    bytes += size;
    last = key;
  }
  return { manifests: out };
}

/** What a manifest with a `subject` adds to its subject's referrers list (the same on every storage); undefined without one. */
export function referrerEntry(m: { digest: string; mediaType: string; bytes: Buffer }, parsed: ParsedManifest): { subject: string; entry: Descriptor } | undefined {
  const doc = parsed.kind === 'manifest' ? parsed.manifest : parsed.index;
  if (!doc.subject) return undefined;
  const entry: Descriptor = { mediaType: m.mediaType, digest: m.digest, size: m.bytes.length };
  const artifactType = doc.artifactType ?? (parsed.kind === 'manifest' ? parsed.manifest.config.mediaType : undefined);
  if (artifactType) entry.artifactType = artifactType;
  if (doc.annotations) entry.annotations = doc.annotations;
  return { subject: doc.subject.digest, entry };
}
