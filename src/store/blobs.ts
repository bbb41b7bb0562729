/**
 * The blob pool of an OCI image layout: `blobs/<alg>/<hex>`. Writes go to a temp file under
 * `ingest/`, are verified, made read-only, recorded in the writer's lease (so prune keeps them),
 * then renamed into place: a blob is visible only once complete and verified.
 *
 * With a `VerifiedBlobs` log (the LocalStore's; not `mpk serve`'s pool), a blob counts as present
 * only while its file is the one mpk verified (see `state`): a file changed since is rehashed, or,
 * when large and rewritten, treated as missing so that pull or build write it again.
 */
import { createReadStream, createWriteStream, statSync, type BigIntStats } from 'node:fs';
import { chmod, mkdir, open, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { PackError, findPackError, fsError } from '../errors.js';
import { parseDigest, VerifyStream, type Expected } from '../oci/digest.js';
import { SMALL_BLOB_BYTES, drain, gatherVerified } from './gather.js';
import { placeNewFile, renameInto } from './file-writer.js';
import { FileSource } from './file-source.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { ByteSource, CallOptions } from '../content/storage.js';
import type { Lease } from './lease.js';
import { identityChange, identityOf, type FileIdentity, type VerifiedBlobs } from './verified.js';

/**
 * Whether a stored blob can be relied on: `present` (its file is the one mpk verified, or was
 * rehashed just now), `absent` (no file), `changed` (a file whose size or bytes are not the
 * blob's, or a large one rewritten since it was verified: to be fetched or rebuilt, not read twice).
 */
export type BlobState = 'present' | 'absent' | 'changed';

/**
 * A blob file rewritten (size or mtime moved) since it was verified is rehashed up to this size;
 * past it, it is treated as missing: a pull or build rewrites it instead of reading it to find
 * out. A file whose only change is its ctime, inode or device (a hard link made, a chmod, the
 * store copied) is rehashed whatever its size: its bytes are most likely intact.
 */
export const REHASH_MAX_BYTES = 16 * 1024 * 1024;

/** Read size for blobs: 1 MiB reads hash ~40% faster than the default 64 KiB. */
export const READ_CHUNK = 1024 * 1024;

/**
 * The read size for a file expected to hold `remaining` more bytes: at most what is left plus one
 * (so the end of file is still seen, and a file longer than expected still fails verification).
 * A file stream allocates a buffer of this size for every read: 1 MiB for each small file of a
 * 10,000-file model kept the collector busy (bench/transfer push 94.5 -> 70.2 s, CPU per blob halved).
 */
export function readChunkFor(remaining: number): number {
  return Math.max(1, Math.min(READ_CHUNK, remaining + 1));
}

export class BlobPool {
  readonly ingestDir: string;
  private ingestReady = false;
  /** Rehashes running, by digest and file identity: one per file however many ask. */
  private readonly checking = new Map<string, Promise<boolean>>();
  /** digest → identity of a file found not to hold the blob: not rehashed a second time. */
  private readonly bad = new Map<string, string>();
  private readonly blobsDir: string;
  constructor(
    readonly root: string,
    private readonly lease: () => Promise<Lease>,
    /** Identities of verified blob files; without it a blob of the right size counts as present. */
    readonly verified?: VerifiedBlobs,
  ) {
    this.ingestDir = join(root, 'ingest');
    this.blobsDir = join(root, 'blobs');
  }

  /** Path of a blob; validates the digest, so no outside string can name another file. */
  path(digest: string): string {
    const { algorithm, hex } = parseDigest(digest);
    // Both parts are checked (lower-case letters, digits, separators): no `..`, no `/` in hex.
    return `${this.blobsDir}/${algorithm}/${hex}`;
  }

  /** Size of the stored blob, or undefined if absent. */
  async size(digest: string): Promise<number | undefined> {
    try {
      const s = await stat(this.path(digest));
      return s.isFile() ? s.size : undefined;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw fsError(e, this.path(digest));
    }
  }

  async exists(desc: Expected): Promise<boolean> {
    return (await this.state(desc)) === 'present';
  }

  /**
   * One `stat` when the file is the one verified. Otherwise: a file of the wrong size is
   * `changed`; one rewritten since it was verified and larger than REHASH_MAX_BYTES is `changed`
   * unread; any other (no record, metadata moved, small) is rehashed, and recorded if it is right.
   */
  async state(desc: Expected): Promise<BlobState> {
    const p = this.path(desc.digest);
    // Synchronous: a stat of a local file takes microseconds, a trip through the thread pool
    // several times that in dispatch and wake-ups (a 10,000-blob pull asks 20,000 times).
    let s: BigIntStats | undefined;
    try {
      s = statSync(p, { bigint: true, throwIfNoEntry: false });
    } catch (e) {
      throw fsError(e, p);
    }
    if (!s?.isFile()) return 'absent';
    if (s.size !== BigInt(desc.size)) return 'changed';
    if (!this.verified) return 'present';
    const now = identityOf(s);
    if (this.bad.get(desc.digest) === now) return 'changed';
    const known = await this.verified.lookup(desc.digest, now);
    if (known === now) return 'present';
    if (known !== undefined && identityChange(known, now) === 'content' && desc.size > REHASH_MAX_BYTES) return 'changed';
    let check = this.checking.get(`${desc.digest} ${now}`);
    if (!check) {
      check = this.rehash(desc, now).finally(() => this.checking.delete(`${desc.digest} ${now}`));
      this.checking.set(`${desc.digest} ${now}`, check);
    }
    return (await check) ? 'present' : 'changed';
  }

  /** Rehashes a blob file whose identity was `before`; records it when right and unchanged meanwhile. */
  private async rehash(desc: Expected, before: string): Promise<boolean> {
    try {
      await this.hashCheck(desc);
    } catch (e) {
      if (e instanceof PackError && (e.code === 'DIGEST_MISMATCH' || e.code === 'SIZE_MISMATCH')) {
        this.bad.set(desc.digest, before);
        return false;
      }
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw fsError(e, this.path(desc.digest));
    }
    return this.recordIfStill(desc.digest, before);
  }

  /** Records the blob file as verified if its identity is still `before` (not written while it was read). */
  private async recordIfStill(digest: string, before: string): Promise<boolean> {
    const after = await stat(this.path(digest), { bigint: true }).catch(() => undefined);
    if (!after || identityOf(after) !== before) return false;
    this.verified?.record(digest, after);
    this.bad.delete(digest);
    return true;
  }

  /**
   * After a hard link to a blob was made or renamed (`extract --link`), which moves the blob's
   * ctime: keeps it verified when its device, inode, size and mtime are still the recorded ones.
   */
  async noteLinked(desc: Expected): Promise<void> {
    if (!this.verified) return;
    const s = await stat(this.path(desc.digest), { bigint: true }).catch(() => undefined);
    if (!s) return;
    const known = await this.verified.get(desc.digest);
    const now = identityOf(s);
    if (known && identityChange(known, now) === 'metadata' && known.split(':').slice(0, 2).join(':') === now.split(':').slice(0, 2).join(':')) {
      this.verified.record(desc.digest, s);
    }
  }

  /** A stream of the blob's bytes (not re-verified: see `verify` for that). */
  async open(desc: Descriptor, offset = 0): Promise<Readable> {
    const p = this.path(desc.digest);
    const fh = await open(p, 'r').catch((e) => {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new PackError('NOT_FOUND', `${desc.digest}: blob not found in the store`, { hint: 'pull or build the model again' });
      }
      throw fsError(e, p);
    });
    return new FileSource(fh, offset, readChunkFor(desc.size - offset));
  }

  /** Reads a whole small blob (manifests, configs), verified, refusing anything over maxBytes. */
  async read(desc: Descriptor, maxBytes: number): Promise<Buffer> {
    if (desc.size > maxBytes) {
      throw new PackError('SIZE_EXCEEDS_LIMIT', `${desc.digest}: ${desc.size} bytes is over the ${maxBytes}-byte limit for metadata`);
    }
    const chunks: Buffer[] = [];
    const verify = new VerifyStream(desc);
    await pipeline(await this.open(desc), verify, async (src: AsyncIterable<Buffer>) => {
      for await (const c of src) chunks.push(c);
    });
    return Buffer.concat(chunks);
  }

  /** A new temp file name under ingest/, carrying our pid so prune can tell live from dead ones. */
  async tempPath(): Promise<string> {
    if (!this.ingestReady) {
      await mkdir(this.ingestDir, { recursive: true });
      this.ingestReady = true;
    }
    return `${this.ingestDir}/${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
  }

  /**
   * Writes content to the pool, verifying size and digest; no-op if the blob is already there.
   * True when the content given was verified and written, false when it was let go unread.
   */
  async push(expected: Expected, content: ByteSource, opts: CallOptions = {}): Promise<boolean> {
    parseDigest(expected.digest);
    if (await this.exists(expected)) {
      await this.hold(expected.digest); // in use by this writer from now on
      await drain(content);
      return false;
    }
    await this.ingest(expected, content, opts);
    return true;
  }

  /**
   * Writes a blob the caller knows is absent. Small blobs (a 10,000-file pull is mostly these)
   * are gathered in memory, verified, and written with one call; larger ones stream through the
   * verifier. The temp file is created read-only (the open descriptor still writes), so no chmod.
   */
  async ingest(expected: Expected, content: ByteSource, opts: CallOptions = {}): Promise<void> {
    const tmp = await this.tempPath();
    try {
      if (expected.size <= SMALL_BLOB_BYTES) {
        // Made, renamed and stat'ed on the file writer's thread (see file-writer.ts).
        const data = await gatherVerified(expected, content, opts.signal);
        await this.hold(expected.digest); // in the lease before the rename
        this.recordVerified(expected.digest, await placeNewFile(tmp, this.path(expected.digest), data, 0o444));
        return;
      }
      const src = content instanceof Uint8Array ? Readable.from([content]) : Readable.from(content);
      await pipeline(src, new VerifyStream(expected), createWriteStream(tmp, { mode: 0o444, flags: 'wx' }), { signal: opts.signal });
      await this.commit(tmp, expected.digest, { readOnly: true });
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw findPackError(e) ?? fsError(e, tmp, 'cannot write blob');
    }
  }

  /**
   * Moves a complete, verified temp file into place as `digest`. The lease entry is written
   * before the rename, so a concurrent prune that sees the blob also sees it is in use.
   */
  async commit(tmp: string, digest: string, opts: { readOnly?: boolean } = {}): Promise<void> {
    const dest = this.path(digest);
    await this.hold(digest);
    if (!opts.readOnly) await chmod(tmp, 0o444);
    // rename and stat are synchronous: metadata calls of microseconds (see `state`).
    renameInto(tmp, dest);
    // Identity after the rename (which moves ctime): the file as verified.
    if (this.verified) this.recordVerified(digest, statSync(dest, { bigint: true }));
  }

  private recordVerified(digest: string, identity: FileIdentity): void {
    if (!this.verified) return;
    this.verified.record(digest, identity);
    this.bad.delete(digest);
  }

  /**
   * For writers outside this thread (the build's workers): the ingest dir, the sha256 blob dir,
   * this process's lease file, to which a digest must be appended before its blob is renamed, and
   * the log to which the identities of the blob files they wrote or compared are appended.
   */
  async writerPaths(): Promise<{ ingest: string; blobs: string; lease: string; verified?: string }> {
    await this.tempPath();
    const paths = { ingest: this.ingestDir, blobs: join(this.root, 'blobs', 'sha256'), lease: (await this.lease()).path };
    if (!this.verified) return paths;
    await mkdir(dirname(this.verified.file), { recursive: true });
    return { ...paths, verified: this.verified.file };
  }

  /** Marks a stored blob as in use by this process (prune spares it until the store is closed). */
  async hold(digest: string): Promise<void> {
    (await this.lease()).add(digest);
  }

  /** hold() for many blobs in one write (a pull's, before it fetches them). */
  async holdAll(digests: Iterable<string>): Promise<void> {
    (await this.lease()).addAll(digests);
  }

  /** Rehashes a stored blob; throws CORRUPT naming the digest when it differs; records it when right. */
  async verify(desc: Expected): Promise<void> {
    try {
      const before = this.verified ? identityOf(await stat(this.path(desc.digest), { bigint: true })) : undefined;
      await this.hashCheck(desc);
      if (before !== undefined) await this.recordIfStill(desc.digest, before);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new PackError('NOT_FOUND', `${desc.digest}: blob missing from the store`, { cause: e, hint: 'pull or build the model again' });
      }
      if (e instanceof PackError && (e.code === 'DIGEST_MISMATCH' || e.code === 'SIZE_MISMATCH')) {
        throw new PackError('CORRUPT', `${desc.digest}: stored blob is corrupt (${e.message.replace(`${desc.digest}: `, '')})`, {
          cause: e,
          hint: 'remove the model (mpk rm), run mpk prune, then pull or build it again',
        });
      }
      throw fsError(e, this.path(desc.digest));
    }
  }

  /** Reads the blob file through a VerifyStream: DIGEST_MISMATCH / SIZE_MISMATCH, or an fs error. */
  private async hashCheck(desc: Expected): Promise<void> {
    await pipeline(createReadStream(this.path(desc.digest), { highWaterMark: READ_CHUNK }), new VerifyStream(desc), async (src: AsyncIterable<Buffer>) => {
      for await (const _ of src);
    });
  }
}

