/**
 * `--fsync`: make a commit durable before it is answered. The file's data is flushed before its
 * rename, and the folder after it, so that after a power cut a name never points at missing
 * bytes. Off by default: a kill -9 loses nothing either way (the page cache outlives the process),
 * and synced writes cap uploads at the disk's write speed.
 */
import { open } from 'node:fs/promises';

export async function syncFile(path: string): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

export async function syncDir(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
