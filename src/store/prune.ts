/**
 * Garbage collection of the local store: deletes blobs that no reference in index.json reaches,
 * sparing every blob that a live process holds in a lease (a build in progress), and removes
 * temp files that dead processes left in ingest/.
 *
 * Order matters: blobs are listed first, then leases are read. A writer records its lease entry
 * before renaming a blob into place, so any blob in the listing is already visible in a lease.
 * The index lock is held while marking and sweeping, so no tag can point at a blob being deleted.
 */
import { readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fsError } from '../errors.js';
import { readIndex } from './index-file.js';
import { withLock } from './lock.js';
import { breakIfStale, isProcessAlive } from './lock.js';
import { liveLeasedDigests } from './lease.js';
import { reachableFrom } from './reachable.js';
import type { LocalStore } from './store.js';

export interface PruneOptions {
  /** Report what would go without deleting anything. */
  dryRun?: boolean;
}

export interface PruneResult {
  removed: { digest: string; size: number }[];
  reclaimedBytes: number;
  keptInUse: number;
  removedTempFiles: number;
}

export async function prune(store: LocalStore, opts: PruneOptions = {}): Promise<PruneResult> {
  const root = store.root;
  const listed = await listBlobs(root);
  return withLock(join(root, 'index.json.lock'), async () => {
    const leased = await liveLeasedDigests(root);
    const index = await readIndex(root);
    const { nodes } = await reachableFrom(store, index.manifests);
    const result: PruneResult = { removed: [], reclaimedBytes: 0, keptInUse: 0, removedTempFiles: 0 };
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
      result.reclaimedBytes += blob.size;
    }
    if (!opts.dryRun) result.removedTempFiles = await removeDeadTemps(store.blobs.ingestDir);
    return result;
  });
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

async function removeDeadTemps(dir: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  let n = 0;
  for (const name of names) {
    if (name === 'partial') continue;
    const pid = Number(name.split('-')[0]);
    if (Number.isInteger(pid) && pid > 0 && isProcessAlive(pid)) continue;
    await unlink(join(dir, name)).then(() => n++, () => undefined);
  }
  return n + (await removeAbandonedPartials(join(dir, 'partial')));
}

/** Partial downloads (ingest/partial/) that no live pull claims: prune gives their space back. */
async function removeAbandonedPartials(dir: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  let n = 0;
  for (const name of names) {
    if (name.endsWith('.lock')) continue;
    const claim = join(dir, `${name}.lock`);
    if (!(await breakIfStale(claim))) continue; // a live pull is writing it
    await unlink(join(dir, name)).then(() => n++, () => undefined);
  }
  return n;
}
