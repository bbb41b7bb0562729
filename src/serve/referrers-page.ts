/**
 * One page of the referrers API from a sorted walk of a subject's entries, whatever the storage:
 * entries after `after`, those `keep` lets through, until the next would pass `maxBytes` (then
 * `next` is the last key given, for the `Link` of the next page). Unreadable entries, and those
 * whose manifest is gone (a delete cut short), are skipped by the storage's `read`.
 */
import type { Descriptor } from '../oci/descriptor.js';
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
