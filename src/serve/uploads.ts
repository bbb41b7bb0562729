/**
 * Blob upload sessions: `uploads/<uuid>/info.json` (repository, creation time) and
 * `uploads/<uuid>/data`, which only grows by appends in order. The session's offset is the data
 * file's size, so a session survives a kill -9: after a restart the client asks for its status
 * (GET → Range) and goes on, and the file is hashed again at close. Nothing here is ever served:
 * a blob appears in the pool only by rename of a data file whose digest was checked. Sessions
 * untouched for the time-to-live are removed by `sweep()`.
 */
import { randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import type { ParsedDigest } from '../oci/digest.js';
import type { BlobPool } from '../store/blobs.js';
import { syncDir, syncFile } from './durable.js';
import { FileAppender } from './file-appender.js';
import { BodyInterrupted, ServeError, uploadUnknown } from './errors.js';
import { isUploadId } from './router.js';
import { FollowerHash, InlineHash, hashFile, type UploadHash } from './upload-hash.js';

export interface UploadsOptions {
  /** Sessions untouched for this long are removed (default 24 h). */
  ttlMs?: number;
  /**
   * Worker threads hashing large uploads at once; beyond that, inline. Default 2 on machines with
   * 4 or more cores, else 0: on 2 cores (shared with a local client) inline hashing was both
   * cheaper and faster here (2 GiB: ~650 vs ~550 MiB/s), as the worker's copy and hand-off cost
   * CPU that no idle core absorbs.
   */
  maxFollowers?: number;
  /** Uploads reaching this size are hashed by a worker when one is free (default 128 MiB: below
   *  that, starting a thread costs about what hashing inline does). */
  followMinBytes?: number;
  /** Flush a blob's bytes before it enters the pool, and the pool folder after (`--fsync`). */
  fsync?: boolean;
}

export interface Session {
  readonly id: string;
  readonly name: string;
  readonly dir: string;
  readonly data: string;
  busy: boolean;
  hash: UploadHash | undefined;
  lastUsed: number;
  /** Set while a body is being appended: stops it (DELETE of the session). */
  abort: (() => void) | undefined;
}

export class Uploads {
  readonly dir: string;
  readonly ttlMs: number;
  private readonly sessions = new Map<string, Session>();
  private readonly loading = new Map<string, Promise<Session | undefined>>();
  private followers = 0;
  /** Closes that had to hash the whole file again (after a restart, a failed write, another algorithm). */
  rehashed = 0;
  private readonly maxFollowers: number;
  private readonly followMin: number;
  private readonly fsync: boolean;

  constructor(
    root: string,
    private readonly pool: BlobPool,
    opts: UploadsOptions = {},
  ) {
    this.dir = join(root, 'uploads');
    this.ttlMs = opts.ttlMs ?? 24 * 3600_000;
    this.maxFollowers = opts.maxFollowers ?? (availableParallelism() >= 4 ? 2 : 0);
    this.followMin = opts.followMinBytes ?? 128 * 1024 * 1024;
    this.fsync = opts.fsync ?? false;
  }

  async create(name: string): Promise<Session> {
    const id = randomUUID();
    const dir = join(this.dir, id);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'info.json'), JSON.stringify({ name, created: new Date().toISOString() }));
    await writeFile(join(dir, 'data'), '', { flag: 'wx', mode: 0o644 });
    const s = this.session(id, name);
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

  private session(id: string, name: string): Session {
    const dir = join(this.dir, id);
    return { id, name, dir, data: join(dir, 'data'), busy: false, hash: undefined, lastUsed: Date.now(), abort: undefined };
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
   * went away (what arrived is kept: the client may resume from the session's status).
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
      if (!s.hash?.follower && size + (opts.length ?? 0) >= this.followMin) this.follow(s, size);
      if (!s.hash) s.hash = await InlineHash.fromFile(s.data, size);
      return await this.write(s, body, size, opts.length);
    } finally {
      s.busy = false;
      s.abort = undefined;
      s.lastUsed = Date.now();
    }
  }

  /** Switches the session to a worker hash (it re-reads the file from byte 0), if one is free. */
  private follow(s: Session, written: number): void {
    if (this.followers >= this.maxFollowers) return;
    let f: FollowerHash;
    try {
      f = new FollowerHash(s.data, written);
    } catch {
      return; // no thread to be had: stay inline
    }
    this.release(s);
    s.hash = f;
    this.followers++;
  }

  private release(s: Session): void {
    if (s.hash?.follower) this.followers--;
    s.hash?.close();
    s.hash = undefined;
  }

  /**
   * Appends the body. With `length` (Content-Length, or a Content-Range sent without one), a body
   * of another length is a 400 SIZE_INVALID: a chunk that would go past it is refused whole (the
   * file never holds bytes beyond the declared range), and what a shorter body brought is kept.
   */
  private async write(s: Session, body: Readable, start: number, length?: number): Promise<number> {
    const file = await FileAppender.open(s.data);
    // A client that left while this request waited (admission queue, sign-in, the disk) has a
    // destroyed body whose 'close' already fired: listening now would wait forever, holding the
    // session and the admission slot. (Nothing is awaited between this check and the listeners.)
    if (body.destroyed) {
      await file.end();
      throw new BodyInterrupted('the client closed the connection');
    }
    let received = start;
    let failure: unknown;
    await new Promise<void>((resolve) => {
      let done = false;
      const finish = (err?: unknown): void => {
        if (done) return;
        done = true;
        failure = err;
        body.off('data', onData);
        resolve();
      };
      let full = false; // the file's queue is full
      const resume = (): void => {
        if (!done && !full && !s.hash?.busy) body.resume();
      };
      const onData = (chunk: Buffer): void => {
        if (length !== undefined && received + chunk.length - start > length) {
          finish(sizeMismatch(length, 'more'));
          return;
        }
        received += chunk.length;
        if (s.hash && !s.hash.follower && received >= this.followMin && this.followers < this.maxFollowers) {
          // Past the threshold, switch to a worker: it reads back what is written, then gets the rest.
          this.follow(s, start + file.written);
          if (s.hash?.follower) for (const p of file.unwritten()) s.hash.update(p);
        }
        s.hash?.update(chunk);
        try {
          full = !file.write(chunk);
        } catch (e) {
          this.release(s); // the hash saw bytes the file did not get
          finish(e);
          body.destroy();
          return;
        }
        if (full) {
          body.pause();
          file.onDrain(() => {
            full = false;
            resume();
          });
        }
        if (s.hash?.busy) {
          body.pause();
          s.hash.onRoom?.(resume);
        }
      };
      body.on('data', onData);
      body.once('end', () => finish(length !== undefined && received - start !== length ? sizeMismatch(length, 'fewer') : undefined));
      body.once('close', () => finish(new BodyInterrupted('the client closed the connection')));
      body.once('error', (e) => finish(new BodyInterrupted(e.message)));
      s.abort = () => {
        finish(new BodyInterrupted('the upload was cancelled'));
        body.destroy();
      };
    });
    // What arrived is written whole even when the client went away: the file stays a prefix of the stream.
    try {
      await file.end();
    } catch (e) {
      this.release(s);
      throw e;
    }
    if (failure !== undefined) throw failure;
    return start + file.written;
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
      this.release(s);
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

  private async remove(s: Session): Promise<void> {
    this.release(s);
    this.sessions.delete(s.id);
    await rm(s.dir, { recursive: true, force: true });
  }

  /**
   * Removes sessions untouched for the time-to-live (by their files' mtimes, so it works on a
   * root left by another process), stops idle hash workers and forgets idle sessions (they are
   * loaded again from disk when used). Returns the number of sessions removed.
   */
  async sweep(now = Date.now(), ttlMs = this.ttlMs): Promise<number> {
    for (const s of [...this.sessions.values()]) {
      if (s.busy) continue;
      if (now - s.lastUsed > 60_000) this.release(s);
      if (now - s.lastUsed > 600_000) this.sessions.delete(s.id);
    }
    let ids: string[];
    try {
      ids = await readdir(this.dir);
    } catch {
      return 0;
    }
    let removed = 0;
    for (const id of ids) {
      const live = this.sessions.get(id);
      if (live?.busy) continue;
      const dir = join(this.dir, id);
      const times = await Promise.all(['', 'data', 'info.json'].map((f) => stat(join(dir, f)).then((st) => st.mtimeMs, () => 0)));
      if (now - Math.max(...times) <= ttlMs) continue;
      if (live) this.release(live);
      this.sessions.delete(id);
      await rm(dir, { recursive: true, force: true });
      removed++;
    }
    return removed;
  }

  close(): void {
    for (const s of this.sessions.values()) this.release(s);
  }
}

function sizeMismatch(length: number, what: 'more' | 'fewer'): ServeError {
  return new ServeError(400, 'SIZE_INVALID', { reason: `the body has ${what} bytes than the ${length} its Content-Range or Content-Length declares` });
}

/** 416 with the current Range and Location, as the spec asks for an out-of-order chunk. */
export function rangeError(s: Session, size: number, location: string, reason: string): ServeError {
  return new ServeError(416, 'BLOB_UPLOAD_INVALID', { uuid: s.id, reason }, uploadHeaders(s, size, location));
}

export function uploadHeaders(s: Session, size: number, location: string): Record<string, string> {
  return { location, range: `0-${Math.max(size - 1, 0)}`, 'docker-upload-uuid': s.id };
}
