/**
 * Small blob files made on one worker thread. A 10,000-file pull creates a file per blob, and
 * creating a file costs ~0.2-0.3 ms here (the inode, the directory entry, the journal), more than
 * the rest of a small blob's work. Through fs/promises a `writeFile` is three thread-pool trips
 * (open, write, close), each a wake-up of a pool thread and of the event loop, and the pool's four
 * threads contend for the one ingest directory; on the main thread the creates would stall the
 * downloads (3.7 s of a 3,000-blob pull's event loop on a busy disk when they were synchronous),
 * and its renames would contend with the creates for the directory. Here one thread does
 * `open(O_EXCL) + write + close`, the rename into place and the stat of the result with plain
 * system calls, beside the main thread. Files asked for while it is busy go to it in one message
 * once it answers, and their answers come back in one.
 *
 * The worker is plain CommonJS given as text (`eval: true`), so it runs the same under tsx and
 * from dist/. One worker serves the process, started at its 17th file (the first are made on the
 * calling thread); it does not keep the process alive while idle. If it cannot start or dies,
 * files are made on the calling thread instead.
 */
import { mkdirSync, renameSync, statSync } from 'node:fs';
import { unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { FileIdentity } from './verified.js';

const WORKER = `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const path = require('node:path');
function place(m) {
  fs.writeFileSync(m.tmp, m.data, { mode: m.mode, flag: 'wx' });
  try {
    try {
      fs.renameSync(m.tmp, m.dest);
    } catch (e) {
      if (e.code !== 'ENOENT') throw e;
      fs.mkdirSync(path.dirname(m.dest), { recursive: true });
      fs.renameSync(m.tmp, m.dest);
    }
  } catch (e) {
    try { fs.unlinkSync(m.tmp); } catch {}
    throw e;
  }
  const s = fs.statSync(m.dest, { bigint: true });
  return { dev: s.dev, ino: s.ino, size: s.size, mtimeNs: s.mtimeNs, ctimeNs: s.ctimeNs };
}
parentPort.on('message', (batch) => {
  const out = [];
  for (const m of batch) {
    try {
      out.push({ id: m.id, identity: place(m) });
    } catch (e) {
      out.push({ id: m.id, error: { message: e.message, code: e.code, errno: e.errno, syscall: e.syscall, path: e.path } });
    }
  }
  parentPort.postMessage(out);
});
`;

interface Job {
  tmp: string;
  dest: string;
  data: Uint8Array;
  mode: number;
  resolve(identity: FileIdentity): void;
  reject(e: unknown): void;
}

let worker: Worker | undefined;
let broken = false;
let nextId = 0;
const jobs = new Map<number, Job>();

/**
 * Renames `tmp` to `dest`, making dest's directory when it is missing (the first blob of another
 * digest algorithm). Synchronous: a metadata call of microseconds. The worker does the same.
 */
export function renameInto(tmp: string, dest: string): void {
  try {
    renameSync(tmp, dest);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    mkdirSync(dirname(dest), { recursive: true });
    renameSync(tmp, dest);
  }
}

/** The same work on this thread: the fallback when there is no worker. */
async function placeHere(j: Omit<Job, 'resolve' | 'reject'>): Promise<FileIdentity> {
  await writeFile(j.tmp, j.data, { mode: j.mode, flag: 'wx' });
  try {
    renameInto(j.tmp, j.dest);
  } catch (e) {
    await unlink(j.tmp).catch(() => undefined);
    throw e;
  }
  return statSync(j.dest, { bigint: true });
}

/**
 * Files made on the calling thread before the worker starts: a worker costs ~60 ms of CPU to start
 * here, more than a handful of files (a model's config, tokenizer and README) cost the thread pool.
 */
const PLACED_BEFORE_WORKER = 16;
let placed = 0;

function start(): Worker | undefined {
  if (broken) return undefined;
  if (worker) return worker;
  try {
    const w = new Worker(WORKER, { eval: true });
    w.unref();
    w.on('message', (answers: { id: number; identity?: FileIdentity; error?: NodeJS.ErrnoException }[]) => {
      sent -= answers.length;
      if (sent === 0) send(); // what was asked for meanwhile
      for (const m of answers) {
        const job = jobs.get(m.id);
        if (!job) continue;
        jobs.delete(m.id);
        if (m.error) job.reject(Object.assign(new Error(m.error.message), m.error));
        else job.resolve(m.identity!);
      }
      if (jobs.size === 0) w.unref();
    });
    // A worker that dies hands its files back: they are made here (a half-made temp file replaced).
    const fail = () => {
      broken = true;
      worker = undefined;
      outbox = [];
      sent = 0;
      for (const j of jobs.values()) {
        unlink(j.tmp)
          .catch(() => undefined)
          .then(() => placeHere(j))
          .then(j.resolve, j.reject);
      }
      jobs.clear();
    };
    w.on('error', fail);
    w.on('exit', () => jobs.size > 0 && fail());
    worker = w;
    return w;
  } catch {
    broken = true;
    return undefined;
  }
}

/**
 * Creates `tmp` (it must not exist) holding `data` with `mode`, renames it to `dest` (making
 * dest's directory if missing), and resolves with the identity of the file now at `dest`. Errors
 * are fs errors with their usual `code` (EEXIST, ENOSPC, EACCES...); the temp file is gone then.
 */
export function placeNewFile(tmp: string, dest: string, data: Uint8Array, mode: number): Promise<FileIdentity> {
  const w = ++placed > PLACED_BEFORE_WORKER ? start() : undefined;
  if (!w) return placeHere({ tmp, dest, data, mode });
  const id = nextId++;
  // Its own copy of the bytes, moved to the worker: a view would take its whole buffer along.
  const own = Uint8Array.prototype.slice.call(data);
  return new Promise<FileIdentity>((resolve, reject) => {
    if (jobs.size === 0) w.ref(); // a file on its way keeps the process alive
    jobs.set(id, { tmp, dest, data, mode, resolve, reject });
    outbox.push({ id, tmp, dest, data: own, mode });
    if (sent === 0) send(); // the worker is idle: at once
  });
}

/**
 * Files asked for while the worker is busy wait, and go to it together once it answers; their
 * answers come back together too. A message each way per file cost ~40 µs of the main thread's
 * time here (a 2,000-blob pull); an idle worker still gets a file at once.
 */
let outbox: { id: number; tmp: string; dest: string; data: Uint8Array; mode: number }[] = [];
/** Files with the worker, not answered yet. */
let sent = 0;

function send(): void {
  const batch = outbox;
  outbox = [];
  // No worker: it died after these were queued, and fail() made them here already.
  if (batch.length === 0 || !worker) return;
  sent += batch.length;
  worker.postMessage(
    batch,
    batch.map((m) => m.data.buffer as ArrayBuffer),
  );
}
