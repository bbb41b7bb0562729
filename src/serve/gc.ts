/**
 * Garbage collection of a registry root: removes what nothing references, sparing anything
 * younger than the grace period (a push in progress has uploaded blobs its manifest does not yet
 * name). In order:
 *   1. upload sessions untouched for the upload time-to-live, and stale temp files under ingest/;
 *   2. per repository, blob links that no manifest of the repository names (config, layers,
 *      index children), and referrers entries whose manifest is gone;
 *   3. pool blobs that no repository links (as a blob or as a manifest).
 * Manifests are never removed here: they are content a client pushed (by tag or by digest) and
 * leave only by DELETE. Online, the pass runs under the gate exclusively (writers wait); offline
 * (`mpk serve gc`) the root lock keeps the server away.
 */
import { readdir, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDigest, type ParsedDigest } from '../oci/digest.js';
import { MAX_MANIFEST_BYTES, parseManifest } from '../oci/manifest.js';
import type { Gate } from './gate.js';
import type { RepoStore } from './repo-store.js';
import type { Uploads } from './uploads.js';

export interface GcOptions {
  /** Nothing younger than this is removed (default 1 h). */
  graceMs?: number;
  /** List what would go, remove nothing. */
  dryRun?: boolean;
  /** Held exclusively for the pass (online collection). */
  gate?: Gate;
  now?: number;
}

/** What a pass removed (a dry run: would remove), each kind with its count and its bytes. */
export interface GcResult {
  uploadsRemoved: number;
  /** Bytes of the expired upload sessions (their data and info files). */
  uploadBytes: number;
  tempsRemoved: number;
  tempBytes: number;
  linksRemoved: number;
  referrersRemoved: number;
  /** Bytes of the blob links and referrers entries (small files, mostly empty). */
  linkBytes: number;
  blobsRemoved: number;
  blobBytes: number;
  /** All of the above, in bytes. */
  bytesFreed: number;
  /** Blobs removed (or, dry run, that would be), by digest. */
  blobs: string[];
  problems: string[];
}

const ALGORITHMS = ['sha256', 'sha512'] as const;

export async function collectGarbage(store: RepoStore, uploads: Uploads, opts: GcOptions = {}): Promise<GcResult> {
  const run = (): Promise<GcResult> => collect(store, uploads, opts);
  return opts.gate ? opts.gate.withExclusive(run) : run();
}

async function collect(store: RepoStore, uploads: Uploads, opts: GcOptions): Promise<GcResult> {
  const now = opts.now ?? Date.now();
  const grace = opts.graceMs ?? 3600_000;
  const old = async (path: string): Promise<{ old: boolean; size: number }> => {
    try {
      const s = await stat(path);
      return { old: now - s.mtimeMs > grace, size: s.size };
    } catch {
      return { old: false, size: 0 };
    }
  };
  const remove = async (path: string): Promise<boolean> => (opts.dryRun ? true : unlink(path).then(() => true, () => false));
  const r: GcResult = { uploadsRemoved: 0, uploadBytes: 0, tempsRemoved: 0, tempBytes: 0, linksRemoved: 0, referrersRemoved: 0, linkBytes: 0, blobsRemoved: 0, blobBytes: 0, bytesFreed: 0, blobs: [], problems: [] };

  const expired = await uploads.expire({ now, dryRun: !!opts.dryRun });
  r.uploadsRemoved = expired.sessions;
  r.uploadBytes = expired.bytes;
  for (const name of await list(store.pool.ingestDir)) {
    const p = join(store.pool.ingestDir, name);
    const o = await old(p);
    if (o.old && (await remove(p))) {
      r.tempsRemoved++;
      r.tempBytes += o.size;
    }
  }

  const linked = new Set<string>();
  for (const repo of await store.listRepositories()) {
    const referenced = new Set<string>();
    const manifests = await listDigests(join(store.repoDir(repo), '_manifests'));
    for (const d of manifests) {
      const digest = `${d.algorithm}:${d.hex}`;
      linked.add(digest);
      try {
        const size = await store.pool.size(digest);
        if (size === undefined) throw new Error('its content is missing from the pool');
        const mediaType = (await readFile(store.manifestLink(repo, d), 'utf8')).trim();
        const bytes = await store.pool.read({ mediaType, digest, size }, MAX_MANIFEST_BYTES);
        const p = parseManifest(bytes, mediaType);
        const children = p.kind === 'manifest' ? [p.manifest.config, ...p.manifest.layers] : p.index.manifests;
        for (const c of children) referenced.add(c.digest);
      } catch (e) {
        // Keep every blob of a repository whose manifests cannot all be read: safer than guessing.
        r.problems.push(`${repo}@${digest}: ${(e as Error).message}`);
        referenced.add('*');
      }
    }
    for (const d of await listDigests(join(store.repoDir(repo), '_blobs'))) {
      const digest = `${d.algorithm}:${d.hex}`;
      const link = store.blobLink(repo, d);
      const o = referenced.has('*') || referenced.has(digest) ? undefined : await old(link);
      if (o?.old && (await remove(link))) {
        r.linksRemoved++;
        r.linkBytes += o.size;
      } else linked.add(digest);
    }
    const manifestSet = new Set(manifests.map((d) => `${d.algorithm}-${d.hex}`));
    const refRoot = join(store.repoDir(repo), '_referrers');
    for (const alg of await list(refRoot)) {
      for (const subject of await list(join(refRoot, alg))) {
        for (const entry of await list(join(refRoot, alg, subject))) {
          const p = join(refRoot, alg, subject, entry);
          if (manifestSet.has(entry)) continue;
          const size = (await stat(p).catch(() => undefined))?.size ?? 0;
          if (await remove(p)) {
            r.referrersRemoved++;
            r.linkBytes += size;
          }
        }
      }
    }
  }

  for (const alg of ALGORITHMS) {
    for (const hex of await list(join(store.root, 'blobs', alg))) {
      const digest = `${alg}:${hex}`;
      if (linked.has(digest)) continue;
      const p = join(store.root, 'blobs', alg, hex);
      const o = await old(p);
      if (o.old && (await remove(p))) {
        r.blobsRemoved++;
        r.blobBytes += o.size;
        r.blobs.push(digest);
      }
    }
  }
  if (!opts.dryRun) store.invalidate();
  r.bytesFreed = r.blobBytes + r.uploadBytes + r.tempBytes + r.linkBytes;
  return r;
}

const count = (n: number, one: string): string => `${n} ${one}${n === 1 ? '' : 's'}`;

/** What a pass removed, each kind with its count and bytes: "2 blobs (1.5 MiB), 1 expired upload session (62.5 MiB), …". */
export function gcSummary(r: GcResult, bytes: (n: number) => string): string {
  return [
    `${count(r.blobsRemoved, 'blob')} (${bytes(r.blobBytes)})`,
    `${count(r.uploadsRemoved, 'expired upload session')} (${bytes(r.uploadBytes)})`,
    `${count(r.linksRemoved + r.referrersRemoved, 'link')} (${bytes(r.linkBytes)})`,
    `${count(r.tempsRemoved, 'temp file')} (${bytes(r.tempBytes)})`,
  ].join(', ');
}

async function list(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch {
    return [];
  }
}

/** `<dir>/<alg>/<hex>` entries that are valid digests. */
async function listDigests(dir: string): Promise<ParsedDigest[]> {
  const out: ParsedDigest[] = [];
  for (const alg of ALGORITHMS) {
    for (const hex of await list(join(dir, alg))) {
      try {
        out.push(parseDigest(`${alg}:${hex}`));
      } catch {
        /* not ours */
      }
    }
  }
  return out;
}
