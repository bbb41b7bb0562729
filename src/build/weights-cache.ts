/**
 * Remembers what the weights' headers said (describeWeights), keyed by every weight file's path
 * and identity (device, inode, size, mtime and ctime in ns, as the digest cache keys them) and the
 * safetensors indexes beside them. A rebuild of unchanged files then reads no header at all: a
 * GGUF header with a large vocabulary is ~10 MB and ~0.2 s to parse. Stored as
 * `cache/weights.json` under the store root; losing it only costs a reread.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describeWeights, type WeightFile, type WeightsDescription } from '../formats/inspect-weights.js';
import { saveMerged } from './cache-file.js';
import { statIdentity } from './digest-cache.js';

/** Bumped whenever describeWeights would say something else for the same files. */
const VERSION = 1;
/** Entries kept, most recent last (a description is a few KB, up to ~300 KB with GGUF metadata). */
const MAX_ENTRIES = 32;

export class WeightsCache {
  private entries = new Map<string, WeightsDescription>();
  private dirty = false;
  private constructor(private readonly file: string) {}

  static async load(storeRoot: string): Promise<WeightsCache> {
    const cache = new WeightsCache(join(storeRoot, 'cache', 'weights.json'));
    cache.entries = await readEntries(cache.file);
    return cache;
  }

  /** describeWeights through the cache; `useCached` false rereads the headers (and refreshes the entry). */
  describer(useCached = true): (files: WeightFile[]) => Promise<WeightsDescription> {
    return async (files) => {
      const key = await cacheKey(files);
      const hit = key !== undefined && useCached ? this.entries.get(key) : undefined;
      if (hit) {
        this.entries.delete(key!);
        this.entries.set(key!, hit); // recency, kept if something else makes a save worth it
        return { ...structuredClone(hit), headersRead: 0 };
      }
      const d = await describeWeights(files);
      if (key !== undefined) {
        this.entries.delete(key);
        this.entries.set(key, d);
        this.dirty = true;
      }
      return d;
    };
  }

  /** Writes the cache (merged with what other builds wrote meanwhile) by temp + rename. */
  async save(): Promise<void> {
    if (!this.dirty) return;
    await saveMerged(this.file, this.entries, MAX_ENTRIES, readEntries, (merged) => ({ version: VERSION, entries: [...merged] }));
    this.dirty = false;
  }
}

/** The files (path, real location, identity) and the safetensors indexes beside them; undefined if one cannot be stat'ed. */
async function cacheKey(files: WeightFile[]): Promise<string | undefined> {
  try {
    const ids: string[][] = [];
    for (const f of [...files].sort((a, b) => (a.path < b.path ? -1 : 1))) ids.push([f.path, f.absPath, statIdentity(await stat(f.absPath, { bigint: true }))]);
    const dirs = [...new Set(files.filter((f) => f.path.endsWith('.safetensors')).map((f) => dirname(f.absPath)))].sort();
    for (const d of dirs) {
      for (const n of (await readdir(d)).filter((x) => x.endsWith('.safetensors.index.json')).sort()) {
        ids.push(['index', join(d, n), statIdentity(await stat(join(d, n), { bigint: true }))]);
      }
    }
    return createHash('sha256').update(JSON.stringify([VERSION, ids])).digest('hex');
  } catch {
    return undefined;
  }
}

async function readEntries(file: string): Promise<Map<string, WeightsDescription>> {
  try {
    const doc = JSON.parse(await readFile(file, 'utf8')) as { version?: number; entries?: Array<[string, WeightsDescription]> };
    if (doc.version !== VERSION || !Array.isArray(doc.entries)) return new Map();
    return new Map(doc.entries.filter((e) => Array.isArray(e) && typeof e[0] === 'string' && e[1] && Array.isArray(e[1].warnings)));
  } catch {
    return new Map(); // missing or damaged: start afresh
  }
}
