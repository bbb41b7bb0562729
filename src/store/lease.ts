/**
 * Leases keep prune away from blobs that a running writer has stored but not yet tagged.
 * A lease is the file `leases/<pid>-<random>` listing digests one per line; entries are appended
 * (O_APPEND, so concurrent appends do not tear) before each blob is renamed into place. Prune
 * honours the leases of live processes and removes those of dead ones.
 */
import { closeSync, mkdirSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { isProcessAlive } from './lock.js';

export class Lease {
  private closed = false;
  private fd: number | undefined;
  /** Digests in the file: each is written once. */
  private readonly held = new Set<string>();
  constructor(readonly path: string) {}

  /** Records a digest as in use (see addAll). */
  add(digest: string): void {
    this.addAll([digest]);
  }

  /**
   * Records digests as in use, those not held yet, in one write; synchronous so that they are in
   * the file before the caller's rename. The file stays open (O_APPEND): not an open, write and
   * close per call. A pull holds all of a manifest's blobs at once, before fetching them.
   */
  addAll(digests: Iterable<string>): void {
    if (this.closed) throw new Error(`lease ${this.path} is closed`);
    const fresh = [...new Set(digests)].filter((d) => !this.held.has(d));
    if (fresh.length === 0) return;
    this.fd ??= openSync(this.path, 'a', 0o644);
    const text = Buffer.from(fresh.join('\n') + '\n');
    for (let n = 0; n < text.length; ) n += writeSync(this.fd, text, n);
    for (const d of fresh) this.held.add(d);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    try {
      unlinkSync(this.path);
    } catch {
      /* never written, or already gone */
    }
  }
}

export function openLease(root: string): Lease {
  const dir = join(root, 'leases');
  mkdirSync(dir, { recursive: true });
  return new Lease(join(dir, `${process.pid}-${Math.random().toString(36).slice(2, 12)}`));
}

/** Digests held by leases of live processes; leases of dead processes are removed. */
export async function liveLeasedDigests(root: string): Promise<Set<string>> {
  const dir = join(root, 'leases');
  const held = new Set<string>();
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return held;
  }
  for (const name of names) {
    const pid = Number(name.split('-')[0]);
    const path = join(dir, name);
    if (!Number.isInteger(pid) || !isProcessAlive(pid)) {
      await unlink(path).catch(() => undefined);
      continue;
    }
    const text = await readFile(path, 'utf8').catch(() => '');
    for (const line of text.split('\n')) if (line) held.add(line);
  }
  return held;
}
