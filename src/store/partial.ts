/**
 * Resumable ingest for pulls. The bytes of a blob being downloaded go to
 * `ingest/partial/<alg>-<hex>`, named by digest so that the next process finds them: after Ctrl-C,
 * kill -9 or a dropped connection, the next pull re-hashes the kept prefix and asks the source
 * only for the rest (HTTP Range). Within one run a broken connection is resumed the same way.
 *
 * Each write is hashed and then appended, in 1 MiB batches with one write in flight, so the
 * digest state always matches the bytes in the file. A claim file (`.lock`, `pid host`) keeps
 * two processes from appending to one partial file; the loser downloads into a private temp file.
 * Nothing is visible in the store until the whole blob is verified and renamed into place.
 */
import { constants as fsConstants } from 'node:fs';
import { open, unlink, mkdir, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { PackError, fsError, isTransient } from '../errors.js';
import { Digester, parseDigest, type DigestAlgorithm, type Expected } from '../oci/digest.js';
import { HashFollower, type HashResult } from './hash-follower.js';
import { isRecyclingStream, type OpenAt, type PushOptions } from '../content/storage.js';
import type { BlobPool } from './blobs.js';
import { breakIfStale } from './lock.js';
import { sleep } from '../internal/sleep.js';

const BATCH = 1024 * 1024;
/** Consecutive failures without progress before giving up. */
const MAX_STALLED_ATTEMPTS = 5;

export async function ingestResumable(pool: BlobPool, expected: Expected, open: OpenAt, opts: PushOptions = {}): Promise<void> {
  const claim = await claimPartial(pool, expected.digest);
  try {
    let fromZeroAgain = false;
    for (;;) {
      const { resumed, result } = await download(claim.path, expected, open, opts);
      const bad = result.size !== expected.size || result.digest !== expected.digest;
      if (!bad) {
        await pool.commit(claim.path, expected.digest);
        return;
      }
      await unlink(claim.path).catch(() => undefined);
      // A kept prefix from an earlier run may be what was wrong: try once more from zero.
      if (resumed && !fromZeroAgain) {
        fromZeroAgain = true;
        continue;
      }
      throw new PackError('DIGEST_MISMATCH', `${expected.digest}: downloaded content has digest ${result.digest}`, {
        hint: 'the registry or the network corrupted the blob; nothing was stored. Pull again, or report it to the registry admin',
      });
    }
  } finally {
    await claim.release();
  }
}

/**
 * Small blobs the caller found absent: fetched whole into a private temp file (no partial file to
 * keep); retried on network faults.
 */
export async function ingestWhole(pool: BlobPool, expected: Expected, open: OpenAt, opts: PushOptions = {}): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await pool.ingest(expected, await open(0), opts);
      opts.onProgress?.(expected.size, 'transferring');
      return;
    } catch (e) {
      if (opts.signal?.aborted || !isTransient(e) || attempt >= MAX_STALLED_ATTEMPTS) throw e;
      await sleep(Math.min(5000, 200 * 2 ** (attempt - 1)), opts.signal);
    }
  }
}

/**
 * A kept prefix at least this big is re-hashed on a worker thread while the rest arrives (the
 * worker then follows the writes). Every other download is hashed inline, on the receiving thread,
 * before each write: with the raw GET's 1 MiB buffers that is cheaper than handing each batch to
 * a worker once written (512 MiB blob from docker-registry, medians of 5 in one run: 0.83-1.98 s
 * wall, 480-590 ms user CPU on the worker; 0.53-0.64 s, 400-450 ms user inline). On two cores the
 * worker's messages and the written-then-hashed hand-off cost more than the second thread gains.
 */
const FOLLOW_MIN_PREFIX = 16 * 1024 * 1024;

/** Hashes what is written: inline before each write, or by a worker given each batch once written. */
interface Hasher {
  beforeWrite(bufs: Buffer[]): void;
  /** Bytes up to `n` are on disk; `bufs` were the last of them, handed to giveBack when done with. */
  written(n: number, bufs: Buffer[], giveBack?: (b: Buffer) => void): void;
  /** Too much waits to be hashed: stop reading until `onRoom`. */
  readonly busy: boolean;
  onRoom(cb: () => void): void;
  finish(size: number): Promise<HashResult>;
  close(): void;
}

function inlineHasher(algorithm: DigestAlgorithm): Hasher & { digester: Digester } {
  const digester = new Digester(algorithm);
  return {
    digester,
    beforeWrite: (bufs) => bufs.forEach((b) => digester.update(b)),
    written: (_n, bufs, giveBack) => giveBack && bufs.forEach(giveBack),
    busy: false,
    onRoom: (cb) => cb(),
    finish: async () => ({ digest: digester.digest(), size: digester.size }),
    close: () => undefined,
  };
}

function followingHasher(path: string, algorithm: DigestAlgorithm, prefix: number): Hasher {
  const f = new HashFollower(path, algorithm);
  f.advance(prefix); // the kept prefix is re-hashed on the worker while the rest arrives
  return {
    beforeWrite: () => undefined,
    written: (_n, bufs, giveBack) => f.feed(bufs, giveBack),
    get busy() {
      return f.busy;
    },
    onRoom: (cb) => f.onRoom(cb),
    finish: (size) => f.digest(size),
    close: () => f.close(),
  };
}

async function download(path: string, expected: Expected, openAt: OpenAt, opts: PushOptions): Promise<{ resumed: boolean; result: HashResult }> {
  let fh: FileHandle;
  try {
    // Not O_APPEND: Linux ignores pwrite positions on such files, and writes here are positioned.
    fh = await open(path, fsConstants.O_RDWR | fsConstants.O_CREAT, 0o644);
  } catch (e) {
    throw fsError(e, path, 'cannot write');
  }
  const algorithm = parseDigest(expected.digest).algorithm;
  let hasher: Hasher | undefined;
  try {
    let offset = (await fh.stat()).size;
    if (offset > expected.size) {
      await fh.truncate(0);
      offset = 0;
    }
    const resumed = offset > 0;
    if (resumed) opts.onProgress?.(offset, 'resuming');
    if (offset >= FOLLOW_MIN_PREFIX) {
      hasher = followingHasher(path, algorithm, offset);
    } else {
      const inline = inlineHasher(algorithm);
      hasher = inline;
      if (resumed) await rehash(fh, offset, inline.digester);
    }
    const state = { written: offset };
    let stalled = 0;
    while (state.written < expected.size) {
      const before = state.written;
      try {
        await append(fh, await openAt(state.written), state, expected, hasher, opts);
        if (state.written < expected.size) {
          throw new PackError('NETWORK', `${expected.digest}: the source ended after ${state.written} of ${expected.size} bytes`);
        }
      } catch (e) {
        if (opts.signal?.aborted || !isTransient(e)) throw e;
        stalled = state.written > before ? 1 : stalled + 1;
        if (stalled > MAX_STALLED_ATTEMPTS) throw e;
        await sleep(Math.min(5000, 200 * 2 ** (stalled - 1)), opts.signal);
      }
    }
    opts.onProgress?.(state.written, 'verifying');
    return { resumed, result: await hasher.finish(state.written) };
  } finally {
    hasher?.close();
    await fh.close();
  }
}


/** Hashes the first `length` bytes already in the file. */
async function rehash(fh: FileHandle, length: number, digester: Digester): Promise<void> {
  const buf = Buffer.allocUnsafe(BATCH);
  let pos = 0;
  while (pos < length) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(BATCH, length - pos), pos);
    if (bytesRead === 0) break;
    digester.update(buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
}

/** Writes in flight at once: receiving goes on while the page cache takes earlier batches. */
const MAX_INFLIGHT_WRITES = 3;

/**
 * Streams src into the file from state.written on, in 1 MiB batches written at their positions
 * with up to 3 writes in flight (the socket is paused beyond that, and while the hash worker is
 * behind). state.written advances only over the contiguous prefix that is on disk, in order, so a
 * fault leaves it exact.
 */
function append(fh: FileHandle, src: Readable, state: { written: number }, expected: Expected, hasher: Hasher, opts: PushOptions): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let batch: Buffer[] = [];
    let batchLen = 0;
    let received = state.written;
    let pos = state.written;
    let inflight = 0;
    let chain: Promise<void> = Promise.resolve();
    let failure: unknown;
    // Buffers written and hashed go back to a source that reuses them.
    const recycle = isRecyclingStream(src) ? (b: Buffer) => src.recycle(b) : undefined;
    const resumeIfRoom = () => {
      if (failure === undefined && inflight < MAX_INFLIGHT_WRITES && !hasher.busy && src.isPaused()) src.resume();
    };
    const fail = (e: unknown) => {
      if (failure !== undefined) return;
      failure = e;
      src.destroy();
      // Let the writes already started land, so state.written is exact, then report.
      chain.then(
        () => reject(asNetwork(e, expected, state.written)),
        (we) => reject(we),
      );
    };
    const flush = () => {
      const bufs = batch;
      const n = batchLen;
      batch = [];
      batchLen = 0;
      hasher.beforeWrite(bufs); // inline hashing is in stream order; a failed write is fatal
      const at = pos;
      pos += n;
      inflight++;
      const w = fh.writev(bufs, at).then(
        ({ bytesWritten }) => {
          if (bytesWritten !== n) throw new PackError('IO', `${expected.digest}: short write to the partial download`);
        },
        (e) => {
          throw fsError(e, 'partial download', 'cannot write');
        },
      );
      const settle = () => {
        inflight--;
        resumeIfRoom();
      };
      w.then(settle, settle);
      chain = chain.then(() => w).then(() => {
        state.written = at + n;
        hasher.written(state.written, bufs, recycle);
        if (hasher.busy) {
          src.pause();
          hasher.onRoom(resumeIfRoom);
        }
        opts.onProgress?.(state.written, 'transferring');
      });
      chain.catch((e) => {
        if (failure === undefined) {
          failure = e;
          src.destroy();
          reject(e);
        }
      });
    };
    src.on('data', (c: Buffer) => {
      if (failure !== undefined) return;
      received += c.length;
      if (received > expected.size) {
        fail(new PackError('SIZE_MISMATCH', `${expected.digest}: the source sent more than ${expected.size} bytes`));
        return;
      }
      batch.push(c);
      batchLen += c.length;
      if (batchLen >= BATCH) {
        flush();
        if (inflight >= MAX_INFLIGHT_WRITES) src.pause();
      }
    });
    src.on('end', () => {
      if (failure !== undefined) return;
      if (batchLen > 0) flush();
      chain.then(resolve, () => undefined);
    });
    src.on('error', fail);
    src.on('close', () => {
      // Closed without 'end' or 'error' (destroyed by its producer): the bytes stop here.
      if (failure === undefined && !src.readableEnded) fail(new Error('stream closed early'));
    });
  });
}

/** A broken source stream (reset, closed early) is a network fault: resumable. */
function asNetwork(e: unknown, expected: Expected, at: number): unknown {
  if (e instanceof PackError) return e;
  return new PackError('NETWORK', `${expected.digest}: download interrupted at ${at} bytes (${(e as Error)?.message || (e as NodeJS.ErrnoException)?.code})`, {
    cause: e,
    hint: 'run the command again: it resumes from the bytes already kept',
  });
}

interface Claim {
  path: string;
  release(): Promise<void>;
}

/** The shared partial file for this digest, or a private temp file if another process has it. */
async function claimPartial(pool: BlobPool, digest: string): Promise<Claim> {
  const { algorithm, hex } = parseDigest(digest);
  const dir = join(pool.ingestDir, 'partial');
  await mkdir(dir, { recursive: true }).catch((e) => {
    throw fsError(e, dir, 'cannot create');
  });
  const path = join(dir, `${algorithm}-${hex}`);
  const lock = `${path}.lock`;
  for (let tries = 0; tries < 3; tries++) {
    try {
      const fh = await open(lock, 'wx', 0o644);
      await fh.writeFile(`${process.pid} ${hostname()}`);
      await fh.close();
      return { path, release: () => unlink(lock).catch(() => undefined) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw fsError(e, lock, 'cannot create');
    }
    // A claim of a dead process is moved aside atomically, so two pullers cannot both break it.
    if (!(await breakIfStale(lock))) break;
  }
  const tmp = await pool.tempPath(); // another live process is downloading this blob: do it privately
  return { path: tmp, release: () => unlink(tmp).catch(() => undefined) };
}
