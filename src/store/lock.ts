/**
 * A cross-process lock file: created with O_EXCL, holding `pid host`. A lock whose process is gone
 * (same host) is stale and is broken. Critical sections under it are short (read and rewrite
 * index.json), so waiting polls with a small backoff.
 */
import { open, readFile, rename, unlink, link } from 'node:fs/promises';
import { hostname } from 'node:os';
import { PackError, fsError } from '../errors.js';

const DEFAULT_TIMEOUT_MS = 60_000;

export interface LockOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Runs fn while holding the lock file at `path`. */
export async function withLock<T>(path: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const release = await acquire(path, opts);
  try {
    return await fn();
  } finally {
    await release();
  }
}

async function acquire(path: string, opts: LockOptions): Promise<() => Promise<void>> {
  const deadline = Date.now() + (opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const me = `${process.pid} ${hostname()}`;
  let delay = 2;
  for (;;) {
    opts.signal?.throwIfAborted();
    try {
      const fh = await open(path, 'wx', 0o644);
      try {
        await fh.writeFile(me);
      } finally {
        await fh.close();
      }
      return () => unlink(path).catch(() => undefined);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw fsError(e, path, 'cannot create lock');
    }
    await breakIfStale(path);
    if (Date.now() > deadline) {
      throw new PackError('LOCKED', `${path}: still locked after ${opts.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms`, {
        hint: 'another mpk process holds the store; wait for it, or remove the lock file if no mpk is running',
      });
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 50);
  }
}

/** True when `pid host` names a process on this host that no longer runs. */
export function isStaleOwner(content: string): boolean {
  const [pidText, host] = content.trim().split(' ');
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return true; // garbage: no owner can release it
  if (host !== hostname()) return false;
  return !isProcessAlive(pid);
}

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes the lock file at path if its owner is dead; true when it is gone (broken or released). */
export async function breakIfStale(path: string): Promise<boolean> {
  let content: string;
  try {
    content = await readFile(path, 'utf8');
  } catch {
    return true; // released meanwhile
  }
  if (content === '' || !isStaleOwner(content)) return false; // empty: the owner is still writing its pid
  // Move it aside atomically so that two breakers cannot remove a lock taken in between.
  const aside = `${path}.stale.${process.pid}.${Math.random().toString(36).slice(2)}`;
  try {
    await rename(path, aside);
  } catch {
    return true;
  }
  const moved = await readFile(aside, 'utf8').catch(() => '');
  let broken = true;
  if (moved !== content) {
    // We moved a fresh lock: put it back if the name is still free.
    await link(aside, path).catch(() => undefined);
    broken = false;
  }
  await unlink(aside).catch(() => undefined);
  return broken;
}
