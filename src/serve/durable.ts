/**
 * `--fsync`: make a commit durable before it is answered. The file's data is flushed before its
 * rename, and the folder after it, so that after a power cut a name never points at missing
 * bytes. Off by default: a kill -9 loses nothing either way (the page cache outlives the process),
 * and synced writes cap uploads at the disk's write speed.
 */
import { open, type FileHandle } from 'node:fs/promises';

/** Flushes a file's data (before it is renamed into place). */
export const syncFile = (path: string): Promise<void> => flushed(path, 'r+', (fh) => fh.datasync());

/** Flushes a folder (after a rename into it), so the new name survives a power cut. */
export const syncDir = (path: string): Promise<void> => flushed(path, 'r', (fh) => fh.sync());

async function flushed(path: string, flags: string, flush: (fh: FileHandle) => Promise<void>): Promise<void> {
  const fh = await open(path, flags);
  try {
    await flush(fh);
  } finally {
    await fh.close();
  }
}
