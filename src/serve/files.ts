/** Small file-system helpers for the registry root: parents made on demand, absence tolerated. */
import { mkdir, readdir, rename, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { isValidName } from './router.js';

export function isNotFound(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** Writes a file, making its folder first if it is missing. */
export async function writeCreating(path: string, content: string): Promise<void> {
  try {
    await writeFile(path, content, { mode: 0o644 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, content, { mode: 0o644 });
  }
}

/** Renames a file into place, making the destination folder first if it is missing. */
export async function renameCreating(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    await mkdir(dirname(to), { recursive: true });
    await rename(from, to);
  }
}

/** Removes a file; false when it was not there. */
export async function removeFile(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (e) {
    if (isNotFound(e)) return false;
    throw e;
  }
}

/**
 * The repositories under `dir`: folders holding link folders (`_blobs`, `_manifests`, …), found
 * by walking only folders whose names are valid path components. Sorted. Every repository the
 * API can make is found (the collector sweeps what no listed repository links): a name's 255
 * characters bound the depth, at most 128 components, so no other limit is set.
 */
export async function listRepositoryNames(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (at: string, prefix: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(at, { withFileTypes: true });
    } catch (e) {
      if (isNotFound(e)) return;
      throw e;
    }
    if (prefix && entries.some((e) => e.name.startsWith('_') && e.isDirectory())) out.push(prefix);
    for (const e of entries) {
      if (!e.isDirectory() || e.name.startsWith('_')) continue;
      const name = prefix ? `${prefix}/${e.name}` : e.name;
      if (isValidName(name)) await walk(join(at, e.name), name);
    }
  };
  await walk(dir, '');
  return out.sort();
}
