/**
 * What the store remembers of each blob file it verified: its identity (device, inode, size,
 * mtime and ctime in ns) when mpk wrote it from verified bytes or rehashed it. A blob file that
 * still has that identity is trusted for the price of one `stat`; any other is checked before
 * anything relies on it (see `BlobPool.state`): a file edited through a hard link (`extract
 * --link`), a flipped byte, a truncation. Every write moves ctime, which no user can set back.
 *
 * The records are an append-only log, `cache/verified-blobs`, one line per record:
 * `<digest> <dev>:<ino>:<size>:<mtimeNs>:<ctimeNs>`, the last line of a digest winning. An append is
 * one O_APPEND write (the records of one turn of the event loop, or a batch from the build's
 * workers), so concurrent writers do not tear lines; a reader takes only whole lines and, on a miss,
 * reads what others appended since.
 * Losing the file or a line (a crash, a compaction racing an append, a read-only store) costs a
 * rehash, never trust: every failure errs towards reading the blob again.
 */
import { closeSync, mkdirSync, openSync, writeSync, type BigIntStats } from 'node:fs';
import { mkdir, open, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** What a file's identity is made of: these fields of a bigint stat. */
export type FileIdentity = Pick<BigIntStats, 'dev' | 'ino' | 'size' | 'mtimeNs' | 'ctimeNs'>;

/** `dev:ino:size:mtimeNs:ctimeNs` of a bigint stat. */
export function identityOf(s: FileIdentity): string {
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
}

/**
 * How a file's identity differs from the recorded one: `same`; `metadata` when only ctime, the
 * inode or the device moved (a hard link made or removed, a chmod, the store copied with its
 * times): the bytes are probably intact; `content` when size or mtime moved: the file was written.
 */
export function identityChange(recorded: string, now: string): 'same' | 'metadata' | 'content' {
  if (recorded === now) return 'same';
  const [, , rs, rm] = recorded.split(':');
  const [, , ns, nm] = now.split(':');
  return rs === ns && rm === nm ? 'metadata' : 'content';
}

/** The log's file under a store root. */
export function verifiedLogPath(storeRoot: string): string {
  return join(storeRoot, 'cache', 'verified-blobs');
}

export class VerifiedBlobs {
  private readonly records = new Map<string, string>();
  private lines = 0;
  /** Bytes of the log taken in so far, and the log file's inode (a compaction replaces it). */
  private offset = 0;
  private ino = -1;
  private loading: Promise<void> | undefined;
  private fd: number | undefined;
  private writable = true;
  /** Lines recorded and not yet appended: they go out together, at the end of this turn of the loop. */
  private pending = '';
  private flushing: NodeJS.Immediate | undefined;

  constructor(readonly file: string) {}

  /** The identity recorded for a digest; reads what other processes appended before saying none. */
  async get(digest: string): Promise<string | undefined> {
    await this.load();
    return this.records.get(digest) ?? (await this.refresh(), this.records.get(digest));
  }

  /** Like get, but also reads newer appends when the record differs from `now`. */
  async lookup(digest: string, now: string): Promise<string | undefined> {
    const known = await this.get(digest);
    if (known === now || known === undefined) return known;
    await this.refresh();
    return this.records.get(digest);
  }

  /** Every record, the log read to its end (a live map: for handing on to worker threads). */
  async snapshot(): Promise<ReadonlyMap<string, string>> {
    await this.load();
    await this.refresh();
    return this.records;
  }

  /**
   * Records a verified file's identity: at once for this process, in the log by the end of this
   * turn of the event loop (or `flush`/`close`). A 2,000-blob pull appended a line per blob, 2,000
   * writes of ~15 µs each here; now a write per batch of blobs landed together. A line lost to a
   * crash before the write costs a rehash, never trust.
   */
  record(digest: string, s: FileIdentity): void {
    const id = identityOf(s);
    this.records.set(digest, id);
    this.pending += `${digest} ${id}\n`;
    if (this.pending.length >= 64 * 1024) this.flush();
    else this.flushing ??= setImmediate(() => this.flush());
  }

  /** Appends the records not yet in the log. */
  flush(): void {
    if (this.flushing) clearImmediate(this.flushing);
    this.flushing = undefined;
    if (!this.pending) return;
    const text = this.pending;
    this.pending = '';
    this.append(text);
  }

  /**
   * Rewrites the log with one line per digest, only those `keep` accepts (prune: the blobs that
   * remain). An append racing the rename is lost, which costs its blob one rehash.
   */
  async compact(keep: (digest: string) => boolean = () => true): Promise<void> {
    await this.load();
    await this.refresh();
    await this.rewrite(keep);
  }

  private async rewrite(keep: (digest: string) => boolean): Promise<void> {
    this.flush();
    for (const d of [...this.records.keys()]) if (!keep(d)) this.records.delete(d);
    const text = [...this.records].map(([d, id]) => `${d} ${id}\n`).join('');
    const tmp = `${this.file}.${process.pid}.tmp`;
    try {
      await mkdir(dirname(this.file), { recursive: true });
      await writeFile(tmp, text);
      await rename(tmp, this.file);
    } catch {
      return; // a read-only store: the log stays as it was
    }
    this.closeFd(); // appends go to the new file
    this.offset = 0; // read again from the top: what others appended meanwhile may be lost, never misread
    this.ino = -1;
    this.lines = 0;
  }

  close(): void {
    this.flush();
    this.closeFd();
  }

  private closeFd(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private append(text: string): void {
    if (!this.writable) return;
    try {
      if (this.fd === undefined) {
        try {
          this.fd = openSync(this.file, 'a', 0o644);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
          mkdirSync(dirname(this.file), { recursive: true });
          this.fd = openSync(this.file, 'a', 0o644);
        }
      }
      writeSync(this.fd, text);
    } catch {
      this.writable = false; // a read-only store: blobs are rehashed when checked, never trusted blindly
    }
  }

  private load(): Promise<void> {
    this.loading ??= (async () => {
      await this.refresh();
      // A log grown well past one line per blob (rewritten blobs, pruned ones) is compacted.
      if (this.lines > 4 * this.records.size + 10_000) await this.rewrite(() => true);
    })();
    return this.loading;
  }

  /** Takes in what was appended since the last read (whole lines only). */
  private async refresh(): Promise<void> {
    this.flush(); // our own lines first, so that the file's order is the order of the records
    let fh;
    try {
      fh = await open(this.file, 'r');
    } catch {
      return;
    }
    try {
      const { size, ino } = await fh.stat();
      if (ino !== this.ino || size < this.offset) {
        // New, or compacted (replaced) by some process: read it from the start.
        this.offset = 0;
        this.ino = ino;
      }
      if (size === this.offset) return;
      const buf = Buffer.allocUnsafe(size - this.offset);
      const { bytesRead } = await fh.read(buf, 0, buf.length, this.offset);
      this.take(buf.subarray(0, bytesRead).toString('utf8'));
    } finally {
      await fh.close();
    }
  }

  private take(text: string): void {
    const end = text.lastIndexOf('\n') + 1;
    for (const line of text.slice(0, end).split('\n')) {
      const sp = line.indexOf(' ');
      if (sp <= 0) continue;
      this.records.set(line.slice(0, sp), line.slice(sp + 1));
      this.lines++;
    }
    this.offset += Buffer.byteLength(text.slice(0, end));
  }
}
