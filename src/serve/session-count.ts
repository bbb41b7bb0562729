/**
 * The number of upload sessions on disk (`uploads/<uuid>/`), and the cap on opening new ones
 * (`--max-upload-sessions`): without it, any client with push rights could open sessions without
 * end, each a folder that lives until its time-to-live, and exhaust the disk's inodes.
 *
 * The folder is read once (before the first change), then the count follows every change made by
 * this process: +1 when a session is made, -1 when its folder is removed (completed, cancelled, a
 * wrong digest, expired, swept). Every removal goes through `remove()`, which counts a folder only
 * if this very call removed it, so two removals of one session (a cancel racing a sweep) count once.
 */
import { lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fsError } from '../errors.js';
import { ServeError } from './errors.js';

export class SessionCount {
  private n = 0;
  private loaded: Promise<void> | undefined;
  private readonly removing = new Map<string, Promise<boolean>>();

  constructor(
    private readonly dir: string,
    /** Sessions that may be open at once (reached: 429 to a request that would open one more). */
    readonly max: number,
  ) {}

  /** Sessions on disk (after `ready()`). */
  get open(): number {
    return this.n;
  }

  /**
   * Reads the folder once. Every change awaits this first, so nothing this process does runs
   * while it is being read (the server calls it before it listens).
   */
  ready(): Promise<void> {
    this.loaded ??= readdir(this.dir).then(
      (entries) => void (this.n = entries.length),
      (e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return; // no session was ever made here
        this.loaded = undefined;
        throw fsError(e, this.dir, 'cannot list upload sessions in');
      },
    );
    return this.loaded;
  }

  /**
   * Takes a place for a session about to be made. At the cap, a 429 TOOMANYREQUESTS, unless
   * `transient`: a session its own request removes before answering (see `Uploads.create`).
   */
  async reserve(transient: boolean): Promise<void> {
    await this.ready();
    if (!transient && this.n >= this.max) throw tooManySessions(this.n, this.max);
    this.n++;
  }

  /** Gives back a place whose session could not be made (its partial folder removed first). */
  async abandon(id: string): Promise<void> {
    const dir = join(this.dir, id);
    // Removed: the place is free. Not removable: it stays on disk, and in the count.
    await rm(dir, { recursive: true, force: true }).then(
      () => void this.n--,
      () => undefined,
    );
  }

  /** Removes a session's folder; true (and one fewer) if this call removed it. */
  async remove(id: string): Promise<boolean> {
    await this.ready();
    const running = this.removing.get(id);
    if (running) {
      await running.catch(() => undefined);
      return false;
    }
    const dir = join(this.dir, id);
    const p = (async () => {
      const existed = await lstat(dir).then(
        () => true,
        () => false,
      );
      await rm(dir, { recursive: true, force: true });
      // Never below 0, even for folders made behind the server's back (not counted when made).
      if (existed) this.n = Math.max(0, this.n - 1);
      return existed;
    })().finally(() => this.removing.delete(id));
    this.removing.set(id, p);
    return p;
  }
}

export function tooManySessions(open: number, max: number): ServeError {
  return new ServeError(
    429,
    'TOOMANYREQUESTS',
    `${open} upload sessions are open, at the limit (--max-upload-sessions ${max}): finish (PUT) or cancel (DELETE) open uploads, or raise --max-upload-sessions`,
  );
}
