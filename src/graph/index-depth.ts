/**
 * How deep indexes nest under a descriptor, read from any storage: a manifest is 0 levels, an
 * index 1 + its deepest entry. Used where a graph is accepted without being walked by the copy:
 * an index the destination already holds (copy skips it, so its depth is checked here: an index
 * already present is no way around the limit), and an index named as a variant of a new one.
 */
import { PackError } from '../errors.js';
import type { CallOptions, ReadOnlyStorage } from '../content/storage.js';
import type { Descriptor } from '../oci/descriptor.js';
import { isIndexMediaType } from '../oci/media-types.js';
import { parseManifest } from '../oci/manifest.js';
import { MAX_INDEX_DEPTH, checkIndexEntries, fetchManifestBytes } from './copy.js';

export function tooDeep(what: string): PackError {
  return new PackError('INVALID_MANIFEST', `${what}: indexes nested more than ${MAX_INDEX_DEPTH} deep`, { hint: 'nothing was stored; an index of indexes this deep is not a model' });
}

/**
 * The index levels under `desc` (reading indexes only, each once); INVALID_MANIFEST past `limit`
 * levels (default MAX_INDEX_DEPTH) or for an index entry that is not a manifest or index.
 */
export async function indexLevels(src: ReadOnlyStorage, desc: Descriptor, limit = MAX_INDEX_DEPTH, opts: CallOptions & { name?: string } = {}): Promise<number> {
  const known = new Map<string, number>();
  const levels = async (d: Descriptor, room: number): Promise<number> => {
    if (!isIndexMediaType(d.mediaType)) return 0;
    if (room <= 0) throw tooDeep(opts.name ?? d.digest);
    const had = known.get(d.digest);
    if (had !== undefined) {
      if (had > room) throw tooDeep(opts.name ?? d.digest);
      return had;
    }
    const parsed = parseManifest(await fetchManifestBytes(src, d, opts.signal), d.mediaType, d.digest);
    if (parsed.kind !== 'index') return 0;
    checkIndexEntries(parsed.index.manifests, d.digest);
    let deepest = 0;
    for (const c of parsed.index.manifests) deepest = Math.max(deepest, await levels(c, room - 1));
    known.set(d.digest, deepest + 1);
    return deepest + 1;
  };
  return levels(desc, limit);
}
