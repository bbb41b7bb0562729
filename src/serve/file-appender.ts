/**
 * Appends received chunks to a file in batches: the socket hands over 64 KiB at a time, and a
 * write per chunk (what a write stream does when the disk keeps up) costs a thread-pool round trip
 * each. Chunks are gathered to `batchBytes` and written with one `writev` (no copy), one write in
 * flight, so the file is always a prefix of what arrived. `write()` says when to pause the source.
 */
import { open, type FileHandle } from 'node:fs/promises';

const BATCH = 1024 * 1024;
/** Gathered plus in flight beyond this: the source should pause. */
const HIGH = 4 * 1024 * 1024;

export class FileAppender {
  /** Bytes this appender has written to the file. */
  written = 0;
  /** Called with each batch once it is in the file, in order; it may keep the buffers (they are not used here again). */
  onWritten: ((bufs: Buffer[]) => void) | undefined;
  /**
   * Called once when a write fails (ENOSPC, EIO…). The source must stop here: when it is paused
   * for `onDrain`, no drain ever comes after a failure, so without this it would wait forever.
   */
  onFailure: ((e: unknown) => void) | undefined;
  private batch: Buffer[] = [];
  private batchBytes = 0;
  private inFlight = 0;
  private writing: Promise<void> | undefined;
  private failure: unknown;
  private drainWaiter: (() => void) | undefined;
  private ending: { resolve: () => void; reject: (e: unknown) => void } | undefined;

  private constructor(private readonly fh: FileHandle) {}

  static async open(path: string): Promise<FileAppender> {
    return new FileAppender(await open(path, 'a'));
  }

  /** Queues a chunk; false when the caller should pause until `onDrain`. Throws after a failed write. */
  write(chunk: Buffer): boolean {
    if (this.failure !== undefined) throw this.failure;
    this.batch.push(chunk);
    this.batchBytes += chunk.length;
    if (this.batchBytes >= BATCH) this.flush();
    return this.batchBytes + this.inFlight < HIGH;
  }

  onDrain(cb: () => void): void {
    this.drainWaiter = cb;
  }

  /** Writes what is queued, closes the file; resolves with the bytes written (rejects on a write error). */
  async end(): Promise<number> {
    try {
      if (this.failure === undefined && (this.writing || this.batchBytes > 0)) {
        await new Promise<void>((resolve, reject) => {
          this.ending = { resolve, reject };
          this.flush();
        });
      }
    } finally {
      await this.fh.close().catch(() => undefined);
    }
    if (this.failure !== undefined) throw this.failure;
    return this.written;
  }

  private flush(): void {
    if (this.writing || this.failure !== undefined) return;
    if (this.batchBytes === 0) {
      this.ending?.resolve();
      return;
    }
    const bufs = this.batch;
    this.inFlight = this.batchBytes;
    this.batch = [];
    this.batchBytes = 0;
    this.writing = this.writeAll(bufs).then(
      () => {
        this.written += this.inFlight;
        this.inFlight = 0;
        this.writing = undefined;
        try {
          this.onWritten?.(bufs);
        } catch {
          /* the listener's own failure; the file is fine (append-body drops the hash) */
        }
        if (this.batchBytes >= BATCH || this.ending) this.flush();
        if (this.batchBytes + this.inFlight < HIGH && this.drainWaiter) {
          const w = this.drainWaiter;
          this.drainWaiter = undefined;
          w();
        }
      },
      (e: unknown) => {
        this.failure = e;
        this.writing = undefined;
        this.drainWaiter = undefined;
        this.ending?.reject(e);
        try {
          this.onFailure?.(e);
        } catch {
          /* the listener's own failure: write() and end() still throw `e` */
        }
      },
    );
  }

  /** writev until every byte is out (a regular file takes all at once unless something is wrong). */
  private async writeAll(bufs: Buffer[]): Promise<void> {
    let rest = [...bufs];
    while (rest.length > 0) {
      const { bytesWritten } = await this.fh.writev(rest);
      let n = bytesWritten;
      if (n === 0) throw new Error('the file took no bytes');
      while (rest.length > 0 && n >= rest[0]!.length) n -= rest.shift()!.length;
      if (n > 0) rest[0] = rest[0]!.subarray(n);
    }
  }
}
