/**
 * Blob upload sessions: `uploads/<uuid>/info.json` (repository, creation time) and
 * `uploads/<uuid>/data`, which only grows by appends in order. The session's offset is the data
 * file's size, so a session survives a kill -9: after a restart the client asks for its status
 * (GET → Range) and goes on, and the file is hashed again at close. Nothing here is ever served:
 * a blob appears in the pool only by rename of a data file whose digest was checked. Sessions
 * untouched for the time-to-live are removed by `sweep()`. The sessions on disk are counted and
 * capped (session-count.ts); the bodies are appended by append-body.ts.
 */
import { randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import type { ParsedDigest } from '../oci/digest.js';
import type { BlobPool } from '../store/blobs.js';
import { appendBody, type Target } from './append-body.js';
import { syncDir, syncFile } from './durable.js';
import { ServeError, isOutOfSpace, outOfSpace, uploadUnknown } from './errors.js';
import type { MinRate } from './min-rate.js';
import { isUploadId } from './router.js';
import { SessionCount } from './session-count.js';
import type { UploadSession, UploadStore } from './storage.js';
import { HashWorkers, InlineHash, hashFile } from './upload-hash.js';

export interface UploadsOptions {
  /** Sessions untouched for this long are removed (default 24 h). */
  ttlMs?: number;
  /**
   * Worker threads hashing large uploads at once; beyond that, inline. Default: one fewer than the
   * cores, at most 2 (none on one core). Written batches are moved to the worker without a copy,
   * so the main thread only receives and writes: on this 2-core VM a 2 GiB upload went from
   * ~4.4-7 s to ~2.8-6 s (interleaved runs; the spread is the VM's page-cache cost).
   */
  maxFollowers?: number;
  /** Uploads reaching this size are hashed by a worker when one is free (default 128 MiB: below
   *  that, starting a thread costs about what hashing inline does). */
  followMinBytes?: number;
  /** Flush a blob's bytes before it enters the pool, and the pool folder after (`--fsync`). */
  fsync?: boolean;
  /** Sessions open at once; past it, opening one more is a 429 (default: no limit). */
  maxSessions?: number;
  /** Bodies slower than this (bytes/s over `minRateWindowMs`, default 60 s) are cut (default 0: none). */
  minRate?: number;
  minRateWindowMs?: number;
}

export interface Session extends Target {
  readonly id: string;
  readonly name: string;
  readonly dir: string;
  busy: boolean;
  lastUsed: number;
}

export class Uploads implements UploadStore<Session> {
  readonly dir: string;
  readonly ttlMs: number;
  private readonly sessions = new Map<string, Session>();
  private readonly loading = new Map<string, Promise<Session | undefined>>();
  /** Closes that had to hash the whole file again (after a restart, a failed write, another algorithm). */
  rehashed = 0;
  private readonly workers: HashWorkers;
  private readonly fsync: boolean;
  private readonly count: SessionCount;
  private readonly minRate: MinRate;

  constructor(
    root: string,
    private readonly pool: BlobPool,
    opts: UploadsOptions = {},
  ) {
    this.dir = join(root, 'uploads');
    this.ttlMs = opts.ttlMs ?? 24 * 3600_000;
    this.workers = new HashWorkers(opts.maxFollowers ?? Math.min(2, availableParallelism() - 1), opts.followMinBytes ?? 128 * 1024 * 1024);
    this.fsync = opts.fsync ?? false;
    this.count = new SessionCount(this.dir, opts.maxSessions ?? Infinity);
    this.minRate = { bytesPerSecond: opts.minRate ?? 0, windowMs: opts.minRateWindowMs ?? 60_000 };
  }

  /** Sessions on disk: the folder is read once (the server does it before it listens), then counted. */
  async countSessions(): Promise<number> {
    await this.count.ready();
    return this.count.open;
  }

  /**
   * A new session; at the limit of open sessions, a 429 TOOMANYREQUESTS. A `transient` one (a
   * monolithic POST's, removed by its own request before it answers, whatever happens) is made
   * even at the limit: it never outlives its request, and those writing at once are bounded by
   * `--max-uploads`, so the folders on disk stay under the limit plus that. It is counted while it
   * exists (it is on disk), so the sessions a client can keep stay bounded.
   */
  async create(name: string, opts: { transient?: boolean } = {}): Promise<Session> {
    const transient = opts.transient ?? false;
    await this.count.reserve(transient);
    const id = randomUUID();
    const dir = join(this.dir, id);
    try {
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'info.json'), JSON.stringify({ name, created: new Date().toISOString() }));
      await writeFile(join(dir, 'data'), '', { flag: 'wx', mode: 0o644 });
    } catch (e) {
      await this.count.abandon(id);
      throw e;
    }
    const s = this.session(id, name, transient);
    this.sessions.set(id, s);
    return s;
  }

  /** The session `id` of repository `name`, from memory or disk; else 404 BLOB_UPLOAD_UNKNOWN. */
  async open(name: string, id: string): Promise<Session> {
    if (!isUploadId(id)) throw uploadUnknown(id);
    let s = this.sessions.get(id);
    if (!s) {
      let p = this.loading.get(id);
      if (!p) {
        p = this.load(id).finally(() => this.loading.delete(id));
        this.loading.set(id, p);
      }
      s = await p;
    }
    if (!s || s.name !== name) throw uploadUnknown(id);
    return s;
  }

  private async load(id: string): Promise<Session | undefined> {
    try {
      const info = JSON.parse(await readFile(join(this.dir, id, 'info.json'), 'utf8')) as { name?: unknown };
      if (typeof info.name !== 'string') return undefined;
      await stat(join(this.dir, id, 'data'));
      const s = this.sessions.get(id) ?? this.session(id, info.name);
      this.sessions.set(id, s);
      return s;
    } catch {
      return undefined;
    }
  }

  private session(id: string, name: string, transient = false): Session {
    const dir = join(this.dir, id);
    return { id, name, dir, data: join(dir, 'data'), transient, busy: false, hash: undefined, lastUsed: Date.now(), abort: undefined };
  }

  /** Bytes held by the session (its data file's size). */
  async size(s: Session): Promise<number> {
    try {
      return (await stat(s.data)).size;
    } catch {
      throw uploadUnknown(s.id);
    }
  }

  /**
   * Appends a request body. With `start`, it must be the session's size (else 416 with the
   * current Range). Resolves with the new size; rejects with BodyInterrupted when the client
   * went away, or 408 when the body came slower than the minimum rate (what arrived is kept: the
   * client may resume from the session's status).
   */
  async append(s: Session, body: Readable, opts: { start?: number; length?: number; location: string }): Promise<number> {
    if (s.busy) throw rangeError(s, await this.size(s), opts.location, 'another request is writing to this upload');
    s.busy = true;
    try {
      const size = await this.size(s);
      if (opts.start !== undefined && opts.start !== size) {
        throw rangeError(s, size, opts.location, `the chunk starts at ${opts.start}; the upload holds ${size} bytes`);
      }
      if (opts.length === 0) return size;
      if (!s.hash?.follower && size + (opts.length ?? 0) >= this.workers.minBytes) this.workers.follow(s, size);
      if (!s.hash) s.hash = await InlineHash.fromFile(s.data, size);
      const resumeHeaders = (n: number): Record<string, string> => uploadHeaders(s, n, opts.location);
      return await appendBody(s, body, { start: size, length: opts.length, workers: this.workers, minRate: this.minRate, resumeHeaders });
    } catch (e) {
      if (!isOutOfSpace(e)) throw e;
      // A full disk: the session's bytes are what fills it, and kept they would hold it until the
      // time-to-live (no other push could store anything meanwhile). Freed, the registry works on;
      // the client starts this blob again (404 BLOB_UPLOAD_UNKNOWN on the session says so).
      await this.remove(s).catch(() => undefined);
      throw outOfSpace('the upload did not fit; its session and the bytes it held were removed: push again once space is freed', { uuid: s.id });
    } finally {
      s.busy = false;
      s.abort = undefined;
      s.lastUsed = Date.now();
    }
  }

  /**
   * Closes the session: checks that its bytes have `digest` (else 400 DIGEST_INVALID, and the
   * session is gone), then moves the data file into the pool. Resolves with the blob's size.
   * `around` runs the move (and what the caller adds, such as the repository link); the hashing,
   * which may read the whole file again, happens before it, so a gate held there is held briefly.
   */
  async complete(s: Session, digest: string, parsed: ParsedDigest, location: string, around: (commit: () => Promise<void>) => Promise<void> = (c) => c()): Promise<number> {
    if (s.busy) throw rangeError(s, await this.size(s), location, 'another request is writing to this upload');
    s.busy = true;
    try {
      const size = await this.size(s);
      let got: string | undefined;
      if (s.hash && s.hash.algorithm === parsed.algorithm) got = await s.hash.digest(size).catch(() => undefined);
      this.workers.release(s);
      if (got === undefined) {
        this.rehashed++;
        got = (await hashFile(s.data, parsed.algorithm)).digest;
      }
      if (got !== digest) {
        await this.remove(s);
        throw new ServeError(400, 'DIGEST_INVALID', { digest, reason: `the uploaded ${size} bytes have digest ${got}` });
      }
      if (this.fsync) await syncFile(s.data);
      await around(async () => {
        await this.pool.commit(s.data, digest);
        if (this.fsync) await syncDir(dirname(this.pool.path(digest)));
      });
      await this.remove(s);
      return size;
    } finally {
      s.busy = false;
    }
  }

  async cancel(s: Session): Promise<void> {
    s.abort?.();
    for (let i = 0; s.busy && i < 500; i++) await new Promise((r) => setTimeout(r, 10));
    await this.remove(s);
  }

  /** Every removal of a session's folder goes through the count (see session-count.ts). */
  private async remove(s: Session): Promise<void> {
    this.workers.release(s);
    this.sessions.delete(s.id);
    await this.count.remove(s.id);
  }

  /**
   * Removes sessions untouched for the time-to-live (by their files' mtimes, so it works on a
   * root left by another process), stops idle hash workers and forgets idle sessions (they are
   * loaded again from disk when used). Returns the number of sessions removed.
   */
  async sweep(now = Date.now(), ttlMs = this.ttlMs): Promise<number> {
    return (await this.expire({ now, ttlMs })).sessions;
  }

  /** `sweep()`, with the bytes freed; a dry run changes nothing and tells what would go. */
  async expire(o: { now?: number; ttlMs?: number; dryRun?: boolean } = {}): Promise<{ sessions: number; bytes: number }> {
    const { now = Date.now(), ttlMs = this.ttlMs, dryRun = false } = o;
    for (const s of dryRun ? [] : [...this.sessions.values()]) {
      if (s.busy) continue;
      if (now - s.lastUsed > 60_000) this.workers.release(s);
      if (now - s.lastUsed > 600_000) this.sessions.delete(s.id);
    }
    const out = { sessions: 0, bytes: 0 };
    let ids: string[];
    try {
      ids = await readdir(this.dir);
    } catch {
      return out;
    }
    for (const id of ids) {
      const live = this.sessions.get(id);
      if (live?.busy) continue;
      const dir = join(this.dir, id);
      const stats = await Promise.all(['', 'data', 'info.json'].map((f) => stat(join(dir, f)).catch(() => undefined)));
      if (now - Math.max(...stats.map((st) => st?.mtimeMs ?? 0)) <= ttlMs) continue;
      const bytes = (stats[1]?.size ?? 0) + (stats[2]?.size ?? 0);
      if (dryRun) {
        out.sessions++;
        out.bytes += bytes;
        continue;
      }
      if (live) this.workers.release(live);
      this.sessions.delete(id);
      if (await this.count.remove(id)) {
        out.sessions++;
        out.bytes += bytes;
      }
    }
    return out;
  }

  close(): void {
    for (const s of this.sessions.values()) this.workers.release(s);
  }
}

/** 416 with the current Range and Location, as the spec asks for an out-of-order chunk. */
export function rangeError(s: UploadSession, size: number, location: string, reason: string): ServeError {
  return new ServeError(416, 'BLOB_UPLOAD_INVALID', { uuid: s.id, reason }, uploadHeaders(s, size, location));
}

export function uploadHeaders(s: UploadSession, size: number, location: string): Record<string, string> {
  return { location, range: `0-${Math.max(size - 1, 0)}`, 'docker-upload-uuid': s.id };
}
