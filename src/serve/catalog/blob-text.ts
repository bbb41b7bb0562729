/**
 * The catalog's only reads of the registry's storage beyond RepoStore's public async methods:
 * a small blob's bytes (a config, a README) and when a tag was last written. Both are bounded and
 * checked; when the storage moves behind an interface (filesystem, S3), only this file changes.
 */
import { stat } from 'node:fs/promises';
import { parseDigest } from '../../oci/digest.js';
import type { RepoStore } from '../repo-store.js';

/**
 * The bytes of a blob linked into `name` when it holds at most `maxBytes` (digest verified by the
 * pool's read); undefined when absent, larger, or unreadable.
 */
export async function readSmallBlob(store: RepoStore, name: string, digest: string, maxBytes: number): Promise<Buffer | undefined> {
  try {
    parseDigest(digest);
    const size = await store.contentSize(name, digest);
    if (size === undefined || size > maxBytes) return undefined;
    return await store.pool.read({ mediaType: 'application/octet-stream', digest, size }, maxBytes);
  } catch {
    return undefined;
  }
}

/** When `tag` of `name` was last pointed (pushed), in ms since the epoch; undefined when unknown. */
export async function tagPushedAt(store: RepoStore, name: string, tag: string): Promise<number | undefined> {
  try {
    return (await stat(store.tagFile(name, tag))).mtimeMs;
  } catch {
    return undefined;
  }
}
