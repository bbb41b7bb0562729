/**
 * The content a set of roots reaches: each manifest or index, and what it points at, recursively.
 * Blobs that are missing or unreadable are reported, not thrown, so prune and verify can go on.
 */
import type { Descriptor } from '../oci/descriptor.js';
import { childDescriptors, isManifestLike } from '../oci/manifest.js';
import type { LocalStore } from './store.js';

export interface Reachable {
  /** digest → descriptor, for every node reached. */
  nodes: Map<string, Descriptor>;
  /** Manifests that could not be read: digest → reason. */
  unreadable: Map<string, string>;
}

export async function reachableFrom(store: LocalStore, roots: Descriptor[]): Promise<Reachable> {
  const nodes = new Map<string, Descriptor>();
  const unreadable = new Map<string, string>();
  const queue = [...roots];
  while (queue.length > 0) {
    const d = queue.pop()!;
    if (nodes.has(d.digest)) continue;
    nodes.set(d.digest, d);
    if (!isManifestLike(d.mediaType)) continue;
    try {
      const parsed = await store.readManifest(d);
      queue.push(...childDescriptors(parsed));
    } catch (e) {
      unreadable.set(d.digest, (e as Error).message);
    }
  }
  return { nodes, unreadable };
}
