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
const statOf = (p) => { try { return fs.statSync(p, { bigint: true }); } catch { return undefined; } };
const idOf = (s) => s.dev + ':' + s.ino + ':' + s.size + ':' + s.mtimeNs + ':' + s.ctimeNs;
// Small files in one message: read whole, hash, record every digest in the writer's lease, then
// write the blobs that are missing (read-only, under a temp name, renamed into place). A cached
// digest is trusted only while its blob file has the identity the store verified (cachedId); a
// blob already there for a file read is compared byte for byte and replaced if it differs. The
// identities of blobs so proven are appended to the store's verified log (job.verified).
function batch(job) {
  const out = [];
  const held = [];
  const proven = [];
  for (const f of job.batch) {
    if (f.cached) held.push(f.cached);
  }
  if (held.length) fs.appendFileSync(job.lease, held.join('\\n') + '\\n');
  for (const f of job.batch) {
    if (f.cached) {
      const s = statOf(job.blobs + '/' + f.cached.slice(7));
      if (s && idOf(s) === f.cachedId) { out.push({ digest: f.cached, size: f.size, read: false }); continue; }
    }
    const fd = fs.openSync(f.src, 'r');
    let data;
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'ENOTFILE' });
      data = Buffer.allocUnsafe(st.size + 1);
      let n = 0;
      for (let r; (r = fs.readSync(fd, data, n, data.length - n, null)) > 0; ) n += r;
      const after = fs.fstatSync(fd);
      if (n !== st.size || after.size !== st.size || after.mtimeMs !== st.mtimeMs) throw Object.assign(new Error('file changed while it was read'), { code: 'ECHANGED', path: f.src });
      data = data.subarray(0, n);
    } catch (e) { e.path = f.src; throw e; } finally { fs.closeSync(fd); }
    out.push({ digest: 'sha256:' + crypto.createHash('sha256').update(data).digest('hex'), size: data.length, read: true, data });
  }
  const fresh = out.filter((r) => r.read);
  if (fresh.length) fs.appendFileSync(job.lease, fresh.map((r) => r.digest).join('\\n') + '\\n');
  for (const r of fresh) {
    const dest = job.blobs + '/' + r.digest.slice(7);
    const before = statOf(dest);
    let same = false;
    if (before && before.isFile() && Number(before.size) === r.size) {
      try { same = fs.readFileSync(dest).equals(r.data); } catch {}
      const after = same && statOf(dest);
      if (after && idOf(after) === idOf(before)) proven.push(r.digest + ' ' + idOf(after));
    }
    if (!same) {
      const tmp = job.ingest + '/' + process.pid + '-b' + job.id + '-' + Math.random().toString(36).slice(2);
      try {
        fs.writeFileSync(tmp, r.data, { mode: 0o444, flag: 'wx' });
        try { fs.renameSync(tmp, dest); } catch (e) { if (e.code !== 'ENOENT') throw e; fs.mkdirSync(job.blobs, { recursive: true }); fs.renameSync(tmp, dest); }
      } catch (e) { try { fs.unlinkSync(tmp); } catch {} throw e; }
      const s = statOf(dest);
      if (s) proven.push(r.digest + ' ' + idOf(s));
    }
    delete r.data;
  }
  if (proven.length && job.verified) {
    try { fs.appendFileSync(job.verified, proven.join('\\n') + '\\n'); } catch {} // lost records cost a rehash, never trust
  }
  return out;
}
parentPort.on('message', (job) => {
  if (job.batch) {
    try { parentPort.postMessage({ id: job.id, results: batch(job) }); }
    catch (e) { parentPort.postMessage({ id: job.id, error: { code: e && e.code, message: String(e && e.message || e), path: e && e.path } }); }
    return;
  }
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

export interface BatchItem {
  src: string;
  size: number;
  /** A digest the cache remembers: the file is not read if that blob is in the store, unchanged. */
  cached?: string;
  /** The identity the store recorded for that blob when it verified it (see store/verified.ts). */
  cachedId?: string;
}

export interface BatchResult extends IngestResult {
  /** False when the cached digest's blob was there and the file was not read. */
  read: boolean;
}

/**
 * Where a batch puts its blobs: the store's ingest dir, its blobs/sha256 dir, the writer's lease
 * file, and the store's log of verified blob identities.
 */
export interface BatchTarget {
  ingest: string;
  blobs: string;
  lease: string;
  verified?: string;
}

interface Job {
  id: number;
  src: string;
  dst?: string;
  batch?: BatchItem[];
  target?: BatchTarget;
  onProgress?: (bytes: number) => void;
  resolve: (r: never) => void;
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
      const job: Job = { id: this.nextId++, src, dst, resolve: resolve as (r: never) => void, reject };
      if (onProgress) job.onProgress = onProgress;
      this.queue.push(job);
      this.pump();
    });
  }

  /**
   * Stores many small files in one round trip to a worker (per-file messages and thread hops
   * cost more than hashing a few KiB). Every digest is in the lease before its blob appears.
   */
  ingestBatch(batch: BatchItem[], target: BatchTarget): Promise<BatchResult[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, src: batch[0]?.src ?? '', batch, target, resolve: resolve as (r: never) => void, reject });
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
      w.postMessage(job.batch ? { id: job.id, batch: job.batch, ...job.target } : { id: job.id, src: job.src, dst: job.dst });
    }
  }

  private spawn(): Worker {
    const w = new Worker(WORKER_SOURCE, { eval: true });
    w.on('message', (msg: { id: number; progress?: number; digest?: string; size?: number; results?: BatchResult[]; error?: { code?: string; message: string; path?: string } }) => {
      const job = this.running.get(msg.id);
      if (!job) return;
      if (msg.progress) job.onProgress?.(msg.progress);
      if (msg.error) {
        this.finish(w, job);
        job.reject(workerError(msg.error, msg.error.path ?? job.src));
      } else if (msg.results) {
        this.finish(w, job);
        job.resolve(msg.results as never);
      } else if (msg.digest) {
        this.finish(w, job);
        job.resolve({ digest: msg.digest, size: msg.size! } as never);
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

/** A file that changed while a build read it (or since the build planned its manifest). */
export function fileChangedError(path: string): PackError {
  return new PackError('IO', `${path}: file changed while it was read`, { hint: 'wait until whatever writes it is done, then build again' });
}

function workerError(err: { code?: string; message: string }, src: string): PackError {
  if (err.code === 'ECHANGED') return fileChangedError(src);
  if (err.code === 'ENOTFILE') return new PackError('IO', `${src}: not a regular file`, { hint: 'package regular files only' });
  if (err.code) return fsError(Object.assign(new Error(err.message), { code: err.code }), src, 'cannot read');
  return new PackError('IO', `${src}: ${err.message}`);
}
