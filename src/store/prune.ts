/**
 * Garbage collection of the local store: deletes blobs that no reference in index.json reaches,
 * sparing every blob that a live process holds in a lease (a build in progress), and removes
 * temp files that dead processes left in ingest/ and partial downloads no live pull claims. The
 * result counts everything freed: a partial download can be far larger than the blobs.
 *
 * Order matters: blobs are listed first, then leases are read. A writer records its lease entry
 * before renaming a blob into place, so any blob in the listing is already visible in a lease.
 * The index lock is held while marking and sweeping, so no tag can point at a blob being deleted.
 */
import { readFile, readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fsError } from '../errors.js';
import { readIndex, refNameOf, writeIndexLocked, type IndexDoc } from './index-file.js';
import { unnamedReferrers } from './referrers.js';
import type { Descriptor } from '../oci/descriptor.js';
import { withLock } from './lock.js';
import { breakIfStale, isProcessAlive, isStaleOwner } from './lock.js';
import { liveLeasedDigests } from './lease.js';
import { reachableFrom } from './reachable.js';
import type { LocalStore } from './store.js';

export interface PruneOptions {
  /** Report what would go without deleting anything. */
  dryRun?: boolean;
}

export interface PruneResult {
  removed: { digest: string; size: number }[];
  /** Every byte freed (with dryRun: that would be): blobs, temp files and partial downloads. */
  reclaimedBytes: number;
  /** Of reclaimedBytes, the removed blobs'. */
  blobBytes: number;
  keptInUse: number;
  /** Temp files of dead writers plus partial downloads that no live pull claims. */
  removedTempFiles: number;
  /** Of removedTempFiles, the partial downloads (`ingest/partial/`). */
  removedPartials: number;
  /** Of reclaimedBytes, the temp files' and partial downloads'. */
  tempBytes: number;
}

export async function prune(store: LocalStore, opts: PruneOptions = {}): Promise<PruneResult> {
  const root = store.root;
  const listed = await listBlobs(root);
  return withLock(join(root, 'index.json.lock'), async () => {
    const leased = await liveLeasedDigests(root);
    const index = await readIndex(root);
    const { nodes, orphanReferrers } = await markWithReferrers(store, index);
    if (!opts.dryRun && orphanReferrers.size > 0) {
      // Referrers whose subject is gone leave index.json with their blobs.
      index.manifests = index.manifests.filter((m) => !orphanReferrers.has(m.digest) || refNameOf(m) !== undefined);
      await writeIndexLocked(root, index);
    }
    const result: PruneResult = { removed: [], reclaimedBytes: 0, blobBytes: 0, keptInUse: 0, removedTempFiles: 0, removedPartials: 0, tempBytes: 0 };
    for (const blob of listed) {
      if (nodes.has(blob.digest)) continue;
      if (leased.has(blob.digest)) {
        result.keptInUse++;
        continue;
      }
      if (!opts.dryRun) {
        await unlink(blob.path).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== 'ENOENT') throw fsError(e, blob.path, 'cannot remove');
        });
      }
      result.removed.push({ digest: blob.digest, size: blob.size });
      result.blobBytes += blob.size;
    }
    const temps = await removeDeadTemps(store.blobs.ingestDir, !!opts.dryRun);
    result.removedTempFiles = temps.files + temps.partials;
    result.removedPartials = temps.partials;
    result.tempBytes = temps.bytes;
    result.reclaimedBytes = result.blobBytes + result.tempBytes;
    if (!opts.dryRun && result.removed.length > 0) {
      // The verified-blob log forgets what is gone.
      const gone = new Set(result.removed.map((b) => b.digest));
      await store.blobs.verified?.compact((d) => !gone.has(d));
    }
    return result;
  });
}

/**
 * The marks: what the named entries (and unnamed entries that are no referrers) reach, plus each
 * unnamed referrer whose subject is reached, repeated for referrers of referrers. A referrer whose
 * subject is not kept is an orphan: it goes, with what only it reaches.
 */
async function markWithReferrers(store: LocalStore, index: IndexDoc): Promise<{ nodes: Map<string, Descriptor>; orphanReferrers: Set<string> }> {
  const referrers = await unnamedReferrers(store, index);
  const roots = index.manifests.filter((m) => refNameOf(m) !== undefined || !referrers.has(m.digest));
  const pending = new Map(referrers);
  let { nodes } = await reachableFrom(store, roots);
  for (;;) {
    const kept = [...pending.values()].filter((r) => nodes.has(r.subject));
    if (kept.length === 0) break;
    for (const r of kept) {
      pending.delete(r.entry.digest);
      roots.push(r.entry);
    }
    nodes = (await reachableFrom(store, roots)).nodes;
  }
  return { nodes, orphanReferrers: new Set(pending.keys()) };
}

interface ListedBlob {
  digest: string;
  path: string;
  size: number;
}

async function listBlobs(root: string): Promise<ListedBlob[]> {
  const out: ListedBlob[] = [];
  for (const alg of ['sha256', 'sha512']) {
    const dir = join(root, 'blobs', alg);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      continue;
    }
    for (const hex of names) {
      const path = join(dir, hex);
      const s = await stat(path).catch(() => undefined);
      if (s?.isFile()) out.push({ digest: `${alg}:${hex}`, path, size: s.size });
    }
  }
  return out;
}

interface Freed {
  files: number;
  partials: number;
  bytes: number;
}

async function removeDeadTemps(dir: string, dryRun: boolean): Promise<Freed> {
  const freed: Freed = { files: 0, partials: 0, bytes: 0 };
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return freed;
  }
  for (const name of names) {
    if (name === 'partial') continue;
    const pid = Number(name.split('-')[0]);
    if (Number.isInteger(pid) && pid > 0 && isProcessAlive(pid)) continue;
    const size = await removeFile(join(dir, name), dryRun);
    if (size === undefined) continue;
    freed.files++;
    freed.bytes += size;
  }
  await removeAbandonedPartials(join(dir, 'partial'), dryRun, freed);
  return freed;
}

/** Partial downloads (ingest/partial/) that no live pull claims: prune gives their space back. */
async function removeAbandonedPartials(dir: string, dryRun: boolean, freed: Freed): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (name.endsWith('.lock') || name.includes('.lock.stale.')) continue;
    const claim = join(dir, `${name}.lock`);
    // A dry run only looks: a claim of a live pull, or one being written, keeps the file.
    const abandoned = dryRun ? await claimIsStale(claim) : await breakIfStale(claim);
    if (!abandoned) continue; // a live pull is writing it
    const size = await removeFile(join(dir, name), dryRun);
    if (size === undefined) continue;
    freed.partials++;
    freed.bytes += size;
  }
}

/** Removes a file (or, dry, only measures it); its size, or undefined when it was not there. */
async function removeFile(path: string, dryRun: boolean): Promise<number | undefined> {
  const s = await stat(path).catch(() => undefined);
  if (!s?.isFile()) return undefined;
  if (dryRun) return s.size;
  return unlink(path).then(() => s.size, () => undefined);
}

async function claimIsStale(claim: string): Promise<boolean> {
  const content = await readFile(claim, 'utf8').catch(() => undefined);
  return content === undefined || (content !== '' && isStaleOwner(content));
}
