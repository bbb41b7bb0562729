/**
 * Hashing an upload session's data file as it grows. Small uploads are hashed inline, chunk by
 * chunk as they arrive (before they are written: a failed write marks the hash unusable). Large
 * ones are hashed by a worker thread (the store's HashFollower) given each batch once it is
 * written, the chunks moved there without a copy, so the main thread only receives and writes.
 * After a restart, or when the client names another algorithm, or when the worker is lost, the
 * file is simply hashed again: the data file is the truth.
 */
import { createReadStream } from 'node:fs';
import { Digester, type DigestAlgorithm } from '../oci/digest.js';
import { HashFollower } from '../store/hash-follower.js';
import { READ_CHUNK } from '../store/blobs.js';

export interface UploadHash {
  readonly algorithm: DigestAlgorithm;
  readonly follower: boolean;
  /** Bytes about to be appended, in order (an inline hash; a worker hash ignores them). */
  update(chunk: Buffer): void;
  /** Bytes just appended, in order, handed over for good (a worker hash). */
  written?(bufs: Buffer[]): void;
  /** A worker hash whose buffer is full: the upload should pause until `onRoom`. */
  readonly busy?: boolean;
  onRoom?(cb: () => void): void;
  /** Digest of the first `size` bytes; the hash cannot be used afterwards. */
  digest(size: number): Promise<string | undefined>;
  close(): void;
}

export class InlineHash implements UploadHash {
  readonly follower = false;
  private readonly d: Digester;
  constructor(readonly algorithm: DigestAlgorithm = 'sha256') {
    this.d = new Digester(algorithm);
  }
  update(chunk: Buffer): void {
    this.d.update(chunk);
  }
  async digest(size: number): Promise<string | undefined> {
    return this.d.size === size ? this.d.digest() : undefined;
  }
  close(): void {}

  /** An inline hash that has already seen the first `size` bytes of `path`. */
  static async fromFile(path: string, size: number, algorithm: DigestAlgorithm = 'sha256'): Promise<InlineHash> {
    const h = new InlineHash(algorithm);
    if (size > 0) {
      for await (const chunk of createReadStream(path, { start: 0, end: size - 1, highWaterMark: READ_CHUNK })) h.update(chunk as Buffer);
    }
    return h;
  }
}

/**
 * Bytes of a large upload go to the worker once written: the body's chunks are moved there, no
 * copy, one message per written batch; a resumed session's kept prefix (or what was written before
 * the switch) is read back from the file first. While too much is out the upload pauses (`busy`,
 * `onRoom`).
 */
export class FollowerHash implements UploadHash {
  readonly follower = true;
  readonly algorithm: DigestAlgorithm = 'sha256';
  private readonly f: HashFollower;
  constructor(path: string, written: number) {
    this.f = new HashFollower(path, this.algorithm);
    this.f.advance(written);
  }
  update(): void {}
  written(bufs: Buffer[]): void {
    this.f.give(bufs);
  }
  get busy(): boolean {
    return this.f.busy;
  }
  onRoom(cb: () => void): void {
    this.f.onRoom(cb);
  }
  async digest(size: number): Promise<string | undefined> {
    const r = await this.f.digest(size);
    return r.size === size ? r.digest : undefined;
  }
  close(): void {
    this.f.close();
  }
}

/** What a session holds of its hash. */
export interface Hashed {
  readonly data: string;
  hash: UploadHash | undefined;
}

/**
 * The worker threads hashing large uploads: at most `max` at once. An upload reaching `minBytes`
 * switches to one when one is free; otherwise it stays inline.
 */
export class HashWorkers {
  private used = 0;
  constructor(
    readonly max: number,
    readonly minBytes: number,
  ) {}

  get free(): boolean {
    return this.used < this.max;
  }

  /** Switches `s` to a worker hash (it re-reads the file's first `written` bytes), if one is free. */
  follow(s: Hashed, written: number): void {
    if (!this.free) return;
    let f: FollowerHash;
    try {
      f = new FollowerHash(s.data, written);
    } catch {
      return; // no thread to be had: stay inline
    }
    this.release(s);
    s.hash = f;
    this.used++;
  }

  /** Drops the session's hash (and its worker, if it has one). */
  release(s: Hashed): void {
    if (s.hash?.follower) this.used--;
    s.hash?.close();
    s.hash = undefined;
  }
}

/** Digest of a whole file. */
export async function hashFile(path: string, algorithm: DigestAlgorithm): Promise<{ digest: string; size: number }> {
  const d = new Digester(algorithm);
  for await (const chunk of createReadStream(path, { highWaterMark: READ_CHUNK })) d.update(chunk as Buffer);
  return { digest: d.digest(), size: d.size };
}
