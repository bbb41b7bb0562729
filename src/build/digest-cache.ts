/**
 * Remembers the digest of each file built, keyed by real path and identified by device, inode,
 * size, mtime and ctime (ns), so rebuilding an unchanged directory reads no weights again. ctime
 * cannot be set by a user, so a file rewritten and `touch`ed back to its old mtime still misses.
 * Stored as `cache/digests.json` under the store root; losing it only costs a rehash.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BigIntStats } from 'node:fs';
import { saveMerged } from './cache-file.js';

interface Entry {
  id: string; // dev:ino:size:mtimeNs:ctimeNs
  digest: string;
}

const VERSION = 1;
/** Entries beyond this are dropped, oldest first (about 200 bytes each). */
const MAX_ENTRIES = 200_000;

export function statIdentity(s: BigIntStats): string {
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
}

export class DigestCache {
  private entries = new Map<string, Entry>();
  private dirty = false;
  private constructor(private readonly file: string) {}

  static async load(storeRoot: string): Promise<DigestCache> {
    const cache = new DigestCache(join(storeRoot, 'cache', 'digests.json'));
    cache.entries = await readEntries(cache.file);
    return cache;
  }

  get(path: string, s: BigIntStats): string | undefined {
    const e = this.entries.get(path);
    return e && e.id === statIdentity(s) ? e.digest : undefined;
  }

  set(path: string, s: BigIntStats, digest: string): void {
    const id = statIdentity(s);
    const e = this.entries.get(path);
    if (e && e.id === id && e.digest === digest) return;
    this.entries.delete(path); // re-insert: Map order is recency
    this.entries.set(path, { id, digest });
    this.dirty = true;
  }

  /** Writes the cache (merged with what other builds wrote meanwhile) by temp + rename. */
  async save(): Promise<void> {
    if (!this.dirty) return;
    await saveMerged(this.file, this.entries, MAX_ENTRIES, readEntries, (merged) => ({ version: VERSION, entries: Object.fromEntries(merged) }));
    this.dirty = false;
  }
}

async function readEntries(file: string): Promise<Map<string, Entry>> {
  try {
    const doc = JSON.parse(await readFile(file, 'utf8')) as { version?: number; entries?: Record<string, Entry> };
    if (doc.version !== VERSION || !doc.entries) return new Map();
    return new Map(Object.entries(doc.entries).filter(([, e]) => typeof e?.id === 'string' && typeof e?.digest === 'string'));
  } catch {
    return new Map(); // missing or damaged: start afresh
  }
}
