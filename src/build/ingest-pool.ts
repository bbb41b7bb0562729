/**
 * Reads, hashes and copies files into the store's ingest area on worker threads: each file is
 * read once, in 1 MiB blocks that are hashed and written as they pass, and up to `concurrency`
 * files go at once (hashing is CPU-bound, so this is what uses a second core).
 *
 * The worker is plain CommonJS given as text (`eval: true`), so it runs the same under tsx and
 * from the compiled dist/ without a separate build step.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { PackError, fsError } from '../errors.js';

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const crypto = require('node:crypto');
const buf = Buffer.allocUnsafe(1 << 20);
const REPORT_EVERY = 16 << 20;
parentPort.on('message', (job) => {
  let fin, fout;
  try {
    fin = fs.openSync(job.src, 'r');
    const st = fs.fstatSync(fin);
    if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'ENOTFILE' });
    fout = fs.openSync(job.dst, 'wx', 0o644);
    const h = crypto.createHash('sha256');
    let size = 0, reported = 0;
    for (;;) {
      const n = fs.readSync(fin, buf, 0, buf.length, null);
      if (n === 0) break;
      const chunk = buf.subarray(0, n);
      h.update(chunk);
      for (let off = 0; off < n; ) off += fs.writeSync(fout, chunk, off, n - off);
      size += n;
      if (size - reported >= REPORT_EVERY) { parentPort.postMessage({ id: job.id, progress: size - reported }); reported = size; }
    }
    const after = fs.fstatSync(fin);
    if (after.size !== size || after.mtimeMs !== st.mtimeMs) throw Object.assign(new Error('file changed while it was read'), { code: 'ECHANGED' });
    parentPort.postMessage({ id: job.id, progress: size - reported, digest: 'sha256:' + h.digest('hex'), size });
  } catch (e) {
    parentPort.postMessage({ id: job.id, error: { code: e && e.code, message: String(e && e.message || e) } });
  } finally {
    if (fin !== undefined) fs.closeSync(fin);
    if (fout !== undefined) fs.closeSync(fout);
  }
});
`;

export interface IngestResult {
  digest: string;
  size: number;
}

interface Job {
  id: number;
  src: string;
  dst: string;
  onProgress?: (bytes: number) => void;
  resolve: (r: IngestResult) => void;
  reject: (e: unknown) => void;
}

/** A bounded pool of hashing workers. Call close() when done. */
export class IngestPool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly queue: Job[] = [];
  private readonly running = new Map<number, Job>();
  private nextId = 1;
  private readonly size: number;

  constructor(concurrency?: number) {
    this.size = Math.max(1, Math.min(concurrency ?? availableParallelism(), 16));
  }

  /** Copies src to dst (which must not exist) and returns the sha256 digest and size of what was read. */
  ingest(src: string, dst: string, onProgress?: (bytes: number) => void): Promise<IngestResult> {
    return new Promise((resolve, reject) => {
      const job: Job = { id: this.nextId++, src, dst, resolve, reject };
      if (onProgress) job.onProgress = onProgress;
      this.queue.push(job);
      this.pump();
    });
  }

  private pump(): void {
    while (this.queue.length > 0) {
      let w = this.idle.pop();
      if (!w && this.workers.length < this.size) w = this.spawn();
      if (!w) return;
      const job = this.queue.shift()!;
      this.running.set(job.id, job);
      (w as Worker & { jobId?: number }).jobId = job.id;
      w.postMessage({ id: job.id, src: job.src, dst: job.dst });
    }
  }

  private spawn(): Worker {
    const w = new Worker(WORKER_SOURCE, { eval: true });
    w.on('message', (msg: { id: number; progress?: number; digest?: string; size?: number; error?: { code?: string; message: string } }) => {
      const job = this.running.get(msg.id);
      if (!job) return;
      if (msg.progress) job.onProgress?.(msg.progress);
      if (msg.error) {
        this.finish(w, job);
        job.reject(workerError(msg.error, job.src));
      } else if (msg.digest) {
        this.finish(w, job);
        job.resolve({ digest: msg.digest, size: msg.size! });
      }
    });
    w.on('error', (e) => {
      const id = (w as Worker & { jobId?: number }).jobId;
      const job = id === undefined ? undefined : this.running.get(id);
      if (job) {
        this.running.delete(job.id);
        job.reject(e);
      }
      this.workers.splice(this.workers.indexOf(w), 1);
      this.pump();
    });
    this.workers.push(w);
    return w;
  }

  private finish(w: Worker, job: Job): void {
    this.running.delete(job.id);
    this.idle.push(w);
    this.pump();
  }

  async close(): Promise<void> {
    const all = this.workers.splice(0);
    this.idle.length = 0;
    await Promise.all(all.map((w) => w.terminate()));
    for (const job of [...this.queue.splice(0), ...this.running.values()]) {
      job.reject(new PackError('ABORTED', `${job.src}: ingest cancelled`));
    }
    this.running.clear();
  }
}

function workerError(err: { code?: string; message: string }, src: string): PackError {
  if (err.code === 'ECHANGED') {
    return new PackError('IO', `${src}: file changed while it was read`, { hint: 'wait until whatever writes it is done, then build again' });
  }
  if (err.code === 'ENOTFILE') return new PackError('IO', `${src}: not a regular file`, { hint: 'package regular files only' });
  if (err.code) return fsError(Object.assign(new Error(err.message), { code: err.code }), src, 'cannot read');
  return new PackError('IO', `${src}: ${err.message}`);
}
