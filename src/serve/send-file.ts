/**
 * Sends bytes `start..end` of an open file as a response body through two buffers used in turn:
 * one is read into while the other is being written. A write's callback means the socket has
 * taken the bytes, so the buffer is free again; waiting for it is the back-pressure. Fresh memory
 * is not touched for every read, as a file stream does (a new buffer per read): on this VM, pages
 * never used before cost a fault each, and downloads varied 2-3x with it.
 */
import type { ServerResponse } from 'node:http';
import { open, type FileHandle } from 'node:fs/promises';
import { READ_CHUNK } from '../store/blobs.js';
import type { BlobBody } from './storage.js';

const BIG_READ = 4 * 1024 * 1024;
const BIG_READ_STREAMS = 8;
/** Blob bodies being sent right now (process-wide). */
let streaming = 0;

/** A pool file opened as a BlobBody; undefined when it is not there. */
export async function openFileBlob(path: string): Promise<BlobBody | undefined> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  let size: number;
  try {
    size = (await fh.stat()).size;
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw e;
  }
  return {
    size,
    async send(start, end, res) {
      // 4 MiB reads stream ~1.5x faster than 1 MiB here; past a few concurrent downloads, memory wins.
      const chunk = streaming < BIG_READ_STREAMS ? BIG_READ : READ_CHUNK;
      streaming++;
      try {
        await sendFile(fh, start, end, res, chunk);
      } finally {
        streaming--;
      }
    },
    close: () => fh.close().catch(() => undefined),
  };
}

/** Resolves when the body is sent (the response ended), or when the client went away. */
export async function sendFile(fh: FileHandle, start: number, end: number, res: ServerResponse, chunk: number): Promise<void> {
  const length = end - start + 1;
  const size = Math.min(chunk, length);
  const buffers = length > size ? [Buffer.allocUnsafeSlow(size), Buffer.allocUnsafeSlow(size)] : [Buffer.allocUnsafeSlow(size)];
  let writing: Promise<void> = Promise.resolve();
  try {
    for (let pos = start, turn = 0; pos <= end; turn ^= 1) {
      // The buffer read into now was last written two turns ago; that write was awaited last turn.
      const buf = buffers[turn % buffers.length]!;
      const { bytesRead } = await fh.read(buf, 0, Math.min(size, end - pos + 1), pos);
      if (bytesRead === 0) throw new Error(`the file ended at ${pos}, before ${end + 1}`);
      pos += bytesRead;
      await writing;
      if (res.destroyed) return; // the client went away
      writing = write(res, buf.subarray(0, bytesRead));
      // It may fail (client gone) while the next read is under way, before it is awaited: handled
      // here too, or the rejection would be unhandled and bring the server down.
      writing.catch(() => undefined);
    }
    await writing;
    if (!res.destroyed) res.end();
  } catch {
    res.destroy(); // a client gone mid-body, or a file cut short: either way this response is over
  }
}

function write(res: ServerResponse, bytes: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    // A response destroyed meanwhile calls back with an error, or (closed) not at all: 'close' ends it.
    const onClose = (): void => reject(new Error('the client closed the connection'));
    res.once('close', onClose);
    res.write(bytes, (err) => {
      res.off('close', onClose);
      if (err) reject(err);
      else resolve();
    });
  });
}
