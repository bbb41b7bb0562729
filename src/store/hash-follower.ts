/**
 * Hashing a download on a worker thread. A pull's main thread is busy receiving HTTP and writing;
 * hashing on the same thread caps a download near 400 MiB/s here. Once a batch is written it goes
 * to the worker without a copy when the writer can take the buffer back afterwards (the raw GET
 * path recycles its 1 MiB buffers): the ArrayBuffer is transferred there and back. Otherwise it is
 * copied into a small ring of shared memory slots (4 x 1 MiB) and the worker is told which slot
 * to hash. Either way the memory is bounded: while too much is out, the download pauses (`busy`,
 * `onRoom`). A resumed download's kept prefix is read back from the file and hashed on
 * the worker first, while the rest arrives; a writer may also just say how far the file is
 * written (`advance`) and let the worker read it back. An upload gives its written batches for
 * good (`give`). A worker that dies never holds the writer: `digest` rejects instead.
 *
 * The worker is plain CommonJS given as text (`eval: true`), so it runs the same under tsx and
 * from dist/.
 */
import { Worker } from 'node:worker_threads';
import { PackError } from '../errors.js';

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const crypto = require('node:crypto');
const hash = crypto.createHash(workerData.algorithm);
let hashed = 0;
function readTo(upTo) {
  if (hashed >= upTo) return;
  const fd = fs.openSync(workerData.path, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    while (hashed < upTo) {
      const n = fs.readSync(fd, buf, 0, Math.min(buf.length, upTo - hashed), hashed);
      if (n === 0) break;
      hash.update(n === buf.length ? buf : buf.subarray(0, n));
      hashed += n;
    }
  } finally { fs.closeSync(fd); }
}
parentPort.on('message', (m) => {
  if (m.stop) { parentPort.close(); return; }
  if (typeof m.upTo === 'number') readTo(m.upTo);
  if (m.bufs) {
    for (const ab of m.bufs) { hash.update(new Uint8Array(ab)); hashed += ab.byteLength; }
    // Back to the owner, given or fed alike: given ones are dropped there, as this thread
    // allocates so little that its collector would let ~64 MiB of them pile up first.
    parentPort.postMessage({ back: m.bufs }, m.bufs);
  }
  if (typeof m.slot === 'number') {
    hash.update(new Uint8Array(workerData.ring, m.slot * workerData.slotBytes, m.len));
    hashed += m.len;
    parentPort.postMessage({ ack: m.slot });
  }
  if (typeof m.end === 'number') {
    readTo(m.end);
    parentPort.postMessage({ digest: workerData.algorithm + ':' + hash.digest('hex'), size: hashed });
    parentPort.close();
  }
});
`;

const SLOT_BYTES = 1024 * 1024;
const SLOTS = 4;
/** Bytes moved to the worker and not yet back, beyond which the writer pauses. */
const MAX_MOVED = 8 * 1024 * 1024;
/** Buffers given smaller than this are copied together rather than moved one by one (moving one
 *  costs a few µs: below ~32 KiB a copy is cheaper, and many tiny ones would stall the loop). */
const MIN_MOVE = 32 * 1024;

export interface HashResult {
  digest: string;
  size: number;
}

export class HashFollower {
  private readonly worker: Worker;
  private readonly result: Promise<HashResult>;
  private readonly ring = new SharedArrayBuffer(SLOT_BYTES * SLOTS);
  private readonly free: number[] = [];
  /** Bytes given to `feed` that wait for a free slot, in order. */
  private readonly waiting: Buffer[] = [];
  private roomWaiter: (() => void) | undefined;
  private moved = 0;
  private giveBack: ((b: Buffer) => void) | undefined;
  /** The worker failed or exited: nothing is sent any more, the writer is never held (`digest` rejects). */
  private dead = false;
  constructor(path: string, algorithm: string) {
    for (let i = 0; i < SLOTS; i++) this.free.push(i);
    this.worker = new Worker(WORKER, { eval: true, workerData: { path, algorithm, ring: this.ring, slotBytes: SLOT_BYTES } });
    this.result = new Promise<HashResult>((resolve, reject) => {
      this.worker.on('message', (m: { ack?: number; back?: ArrayBuffer[]; digest?: string; size?: number }) => {
        if (typeof m.ack === 'number' || m.back) {
          if (typeof m.ack === 'number') this.free.push(m.ack);
          for (const ab of m.back ?? []) {
            this.moved -= ab.byteLength;
            this.giveBack?.(Buffer.from(ab));
          }
          this.pump();
          if (!this.busy && this.roomWaiter) {
            const w = this.roomWaiter;
            this.roomWaiter = undefined;
            w();
          }
        } else if (typeof m.digest === 'string') resolve({ digest: m.digest, size: m.size ?? 0 });
      });
      this.worker.once('error', (e) => {
        this.die();
        reject(new PackError('IO', `${path}: cannot hash (${e.message})`, { cause: e }));
      });
      this.worker.once('exit', (code) => {
        this.die();
        reject(new PackError('IO', `${path}: hashing stopped (exit ${code})`));
      });
    });
    this.result.catch(() => undefined); // observed by digest(); not an unhandled rejection meanwhile
  }

  /**
   * Bytes [0, n) of the file are written and may be read back and hashed (for a resumed
   * download's kept prefix, or a writer that does not hand over its buffers). Not to be mixed
   * with `feed` except before it.
   */
  advance(n: number): void {
    if (n > 0) this.worker.postMessage({ upTo: n });
  }

  /**
   * The next bytes, in order, once written. With `giveBack`, a buffer that owns its whole
   * ArrayBuffer is moved to the worker (unusable here until it comes back through giveBack);
   * anything else is copied, and given back at once.
   */
  feed(bufs: Buffer[], giveBack?: (b: Buffer) => void): void {
    if (giveBack) this.giveBack = giveBack;
    if (this.dead) {
      if (giveBack) for (const b of bufs) giveBack(b);
      return;
    }
    for (const b of bufs) {
      if (b.length === 0) continue;
      const ab = b.buffer;
      if (giveBack && this.waiting.length === 0 && ab instanceof ArrayBuffer && b.byteOffset === 0 && b.byteLength === ab.byteLength) {
        this.moved += ab.byteLength;
        this.worker.postMessage({ bufs: [ab] }, [ab]); // in order: nothing waits for a slot
        continue;
      }
      this.waiting.push(b);
      this.pump();
    }
  }

  /** Copies waiting bytes into free slots, one message per slot. */
  private pump(): void {
    while (this.free.length > 0 && this.waiting.length > 0) {
      const slot = this.free.shift()!;
      const view = new Uint8Array(this.ring, slot * SLOT_BYTES, SLOT_BYTES);
      let len = 0;
      while (len < SLOT_BYTES && this.waiting.length > 0) {
        const b = this.waiting[0]!;
        const n = Math.min(b.length, SLOT_BYTES - len);
        view.set(n === b.length ? b : b.subarray(0, n), len);
        len += n;
        if (n === b.length) this.waiting.shift();
        else this.waiting[0] = b.subarray(n);
      }
      this.worker.postMessage({ slot, len });
    }
  }

  /**
   * The next bytes, in order, once written, handed over for good: buffers of 32 KiB or more that
   * own their whole ArrayBuffer (an HTTP body's chunks do) are moved to the worker, no copy, in one
   * message per call; the rest are copied together. They come back as `feed`'s moved buffers do,
   * and with no giveBack set are dropped here. The caller must not touch what it gave. Not to be
   * mixed with `feed`.
   */
  give(bufs: readonly Buffer[]): void {
    if (this.dead) return;
    const abs: ArrayBuffer[] = [];
    let n = 0;
    let small: Buffer[] = []; // consecutive small buffers, sent as one copy (each transfer has a cost)
    const flushSmall = (): void => {
      if (small.length === 0) return;
      const own = Buffer.allocUnsafeSlow(small.reduce((sum, b) => sum + b.length, 0)); // its own ArrayBuffer
      let at = 0;
      for (const b of small) at += b.copy(own, at);
      abs.push(own.buffer as ArrayBuffer);
      small = [];
    };
    for (const b of bufs) {
      if (b.length === 0) continue;
      n += b.length;
      const ab = b.buffer;
      if (b.length >= MIN_MOVE && ab instanceof ArrayBuffer && b.byteOffset === 0 && b.byteLength === ab.byteLength) {
        flushSmall();
        abs.push(ab);
      } else small.push(b);
    }
    flushSmall();
    if (n === 0) return;
    this.moved += n;
    this.worker.postMessage({ bufs: abs }, abs);
  }

  /** Bytes wait for a slot, or too many are moved out: the writer should pause until `onRoom`. */
  get busy(): boolean {
    return !this.dead && (this.waiting.length > 0 || this.moved >= MAX_MOVED);
  }

  private die(): void {
    this.dead = true;
    this.waiting.length = 0;
    const w = this.roomWaiter;
    this.roomWaiter = undefined;
    w?.();
  }

  /** Calls back once when no longer busy (at once if not). */
  onRoom(cb: () => void): void {
    if (!this.busy) cb();
    else this.roomWaiter = cb;
  }

  /** The file is complete at `size` bytes (anything not fed is read back): its digest and the bytes hashed. */
  async digest(size: number): Promise<HashResult> {
    if (this.waiting.length > 0) await new Promise<void>((resolve) => this.onRoom(resolve));
    this.worker.postMessage({ end: size });
    return this.result;
  }

  /** Stops the worker (it holds no file open between messages). */
  close(): void {
    try {
      this.worker.postMessage({ stop: true });
    } catch {
      /* already gone */
    }
    this.worker.unref();
  }
}
