/**
 * Reading files whose names or contents come from outside (model headers, indexes, Ollama
 * manifests, config.json): opened without blocking (a FIFO or a device named like a model file
 * never hangs the reader), refused unless regular, and never read past a stated bound.
 */
import { constants, type Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { PackError, fsError, type ErrorCode } from '../errors.js';

export interface OpenRegularOptions {
  /** Prefix for file system errors (`cannot open PATH: …`); default none. */
  what?: string;
  /** The error for something that is not a regular file; default IO, "give a model file". */
  notFile?: { code: ErrorCode; hint: string };
}

/** Opens a regular file for reading without blocking on FIFOs or devices; returns the handle and its size. */
export async function openRegularFile(path: string, opts: OpenRegularOptions = {}): Promise<{ fh: FileHandle; st: Stats }> {
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw fsError(e, path, opts.what);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) {
      const { code, hint } = opts.notFile ?? { code: 'IO' as const, hint: 'give a model file' };
      throw new PackError(code, `${path}: not a regular file`, { hint });
    }
    return { fh, st };
  } catch (e) {
    await fh.close().catch(() => {});
    throw fsError(e, path, opts.what);
  }
}

/** Reads up to `length` bytes at `position`; fewer only at the end of the file. */
export async function readAt(fh: FileHandle, path: string, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let filled = 0;
  try {
    while (filled < length) {
      const { bytesRead } = await fh.read(buf, filled, length - filled, position + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
  } catch (e) {
    throw fsError(e, path);
  }
  return filled === length ? buf : buf.subarray(0, filled);
}

export interface ReadSmallOptions extends OpenRegularOptions {
  /** What the file is, for the size error: `index`, `Ollama manifest`. */
  label: string;
  /** Hint of the size error. */
  sizeHint: string;
}

/**
 * A whole small file (a JSON document): regular, at most `maxBytes` by its size before anything
 * is read (SIZE_EXCEEDS_LIMIT otherwise), and never more than that size even if it grows meanwhile.
 */
export async function readSmallFile(path: string, maxBytes: number, opts: ReadSmallOptions): Promise<Buffer> {
  const { fh, st } = await openRegularFile(path, opts);
  try {
    if (st.size > maxBytes) {
      throw new PackError('SIZE_EXCEEDS_LIMIT', `${path}: ${opts.label} of ${st.size} bytes exceeds the ${maxBytes}-byte limit`, { hint: opts.sizeHint });
    }
    return await readAt(fh, path, 0, st.size);
  } finally {
    await fh.close().catch(() => {});
  }
}
