/**
 * llama.cpp finds the shards of a split GGUF by name from the first one
 * (`PREFIX-00001-of-00003.gguf` → `PREFIX-00002-of-00003.gguf` …), but blobs are named by digest.
 * So a split model is loaded through a folder of symbolic links named as llama.cpp expects, each
 * pointing at its blob: nothing is copied, and the mapped files are the store's blobs.
 * `STORE/run/sha256-<first shard's hex>/model-0000N-of-0000M.gguf`, made once (temp folder + rename).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readlink, rename, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fsError } from '../errors.js';
import type { LocalStore } from '../store/store.js';
import type { GgufFile } from './gguf-roles.js';

export async function shardLinks(store: LocalStore, shards: GgufFile[]): Promise<string> {
  // named by the first shard's blob: one artifact may hold two split models (--weight)
  const dir = join(store.root, 'run', shards[0]!.file.layer.digest.replace(':', '-'));
  const n = String(shards.length).padStart(5, '0');
  const names = shards.map((_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${n}.gguf`);
  const targets = shards.map((g) => store.blobs.path(g.file.layer.digest));
  if (await linksAre(dir, names, targets)) return join(dir, names[0]!);
  const tmp = `${dir}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`; // two loads at once each make their own
  try {
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    for (let i = 0; i < names.length; i++) await symlink(targets[i]!, join(tmp, names[i]!));
    // a stale folder (wrong links) is moved aside, not emptied under a process that maps it
    await rename(dir, `${tmp}.old`).catch(() => undefined);
    await rename(tmp, dir);
    await rm(`${tmp}.old`, { recursive: true, force: true });
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    if (await linksAre(dir, names, targets)) return join(dir, names[0]!); // another process made it
    throw fsError(e, dir, 'cannot link the shards in');
  }
  return join(dir, names[0]!);
}

async function linksAre(dir: string, names: string[], targets: string[]): Promise<boolean> {
  try {
    for (let i = 0; i < names.length; i++) if ((await readlink(join(dir, names[i]!))) !== targets[i]) return false;
    return true;
  } catch {
    return false;
  }
}
