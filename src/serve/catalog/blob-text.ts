/**
 * The catalog's reads of a blob's bytes (a config, a README) and of a tag's push time, through the
 * registry's storage interface (filesystem or S3): bounded, digest checked, and never throwing.
 */
import { parseDigest } from '../../oci/digest.js';
import type { RegistryStorage } from '../storage.js';

/** The bytes of a blob linked into `name` when it holds at most `maxBytes`; undefined when absent, larger, or unreadable. */
export async function readSmallBlob(store: RegistryStorage, name: string, digest: string, maxBytes: number): Promise<Buffer | undefined> {
  try {
    parseDigest(digest);
    return await store.readSmallBlob(name, digest, maxBytes);
  } catch {
    return undefined;
  }
}

/** When `tag` of `name` was last pointed (pushed), in ms since the epoch; undefined when unknown. */
export async function tagPushedAt(store: RegistryStorage, name: string, tag: string): Promise<number | undefined> {
  try {
    return await store.tagWrittenAt(name, tag);
  } catch {
    return undefined;
  }
}
