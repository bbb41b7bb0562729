/**
 * Hashing a file while another thread writes it. A pull's main thread is busy receiving HTTP and
 * writing; hashing on the same thread caps a download near 400 MiB/s here. A worker thread reads
 * back what has been written (from the page cache, 1 MiB reads) and hashes it, told by messages
 * how far the file is complete. It starts at byte 0, so a resumed download re-hashes the kept
 * prefix on the second core while the rest arrives.
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
const fd = fs.openSync(workerData.path, 'r');
const hash = crypto.createHash(workerData.algorithm);
const buf = Buffer.allocUnsafe(1 << 20);
let pos = 0, upTo = 0, end = -1;
function pump() {
  while (pos < upTo) {
    const n = fs.readSync(fd, buf, 0, Math.min(buf.length, upTo - pos), pos);
    if (n === 0) break;
    hash.update(n === buf.length ? buf : buf.subarray(0, n));
    pos += n;
  }
  if (end >= 0 && pos >= end) {
    fs.closeSync(fd);
    parentPort.postMessage({ digest: workerData.algorithm + ':' + hash.digest('hex'), size: pos });
    parentPort.close();
  }
}
parentPort.on('message', (m) => {
  if (m.stop) { try { fs.closeSync(fd); } catch {} parentPort.close(); return; }
  if (typeof m.upTo === 'number') upTo = Math.max(upTo, m.upTo);
  if (typeof m.end === 'number') { end = m.end; upTo = m.end; }
  pump();
});
`;

export interface HashResult {
  digest: string;
  size: number;
}

export class HashFollower {
  private readonly worker: Worker;
  private readonly result: Promise<HashResult>;
  constructor(path: string, algorithm: string) {
    this.worker = new Worker(WORKER, { eval: true, workerData: { path, algorithm } });
    this.result = new Promise<HashResult>((resolve, reject) => {
      this.worker.once('message', resolve);
      this.worker.once('error', (e) => reject(new PackError('IO', `${path}: cannot hash (${e.message})`, { cause: e })));
      this.worker.once('exit', (code) => reject(new PackError('IO', `${path}: hashing stopped (exit ${code})`)));
    });
    this.result.catch(() => undefined); // observed by digest(); not an unhandled rejection meanwhile
  }

  /** Bytes 0..n-1 of the file are written. */
  advance(n: number): void {
    this.worker.postMessage({ upTo: n });
  }

  /** The file is complete at `size` bytes: its digest. */
  digest(size: number): Promise<HashResult> {
    this.worker.postMessage({ end: size });
    return this.result;
  }

  /** Stops the worker; it closes its file itself (a terminated thread would leak the fd). */
  close(): void {
    try {
      this.worker.postMessage({ stop: true });
    } catch {
      /* already gone */
    }
    this.worker.unref();
  }
}
