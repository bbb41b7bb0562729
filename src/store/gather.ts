/**
 * Content given to the blob pool, gathered or let go: a small blob (a 10,000-file pull is mostly
 * these) is collected in memory and verified before it is written with one call; content for a
 * blob already stored is released unread.
 */
import { Readable } from 'node:stream';
import { checkDigest, Digester, parseDigest, type Expected } from '../oci/digest.js';
import type { ByteSource } from '../content/storage.js';
import { WholeBody } from '../content/whole-body.js';

/** Blobs up to this size are verified in memory and written with one call. */
export const SMALL_BLOB_BYTES = 1024 * 1024;

/** All of content (at most expected.size bytes, or SIZE_MISMATCH at once), verified. */
export async function gatherVerified(expected: Expected, content: ByteSource, signal?: AbortSignal): Promise<Buffer> {
  const d = new Digester(parseDigest(expected.digest).algorithm);
  if (content instanceof WholeBody) content = content.bytes; // nothing to release: it holds no resource
  if (content instanceof Uint8Array) {
    d.update(content);
    const err = checkDigest(expected, d);
    if (err) throw err;
    return Buffer.from(content.buffer, content.byteOffset, content.byteLength);
  }
  const chunks: Buffer[] = [];
  try {
    for await (const c of content as AsyncIterable<Uint8Array>) {
      signal?.throwIfAborted();
      d.update(c);
      if (d.size > expected.size) throw checkDigest(expected, d);
      chunks.push(Buffer.from(c.buffer, c.byteOffset, c.byteLength));
    }
  } finally {
    if (content instanceof Readable) content.destroy();
  }
  const err = checkDigest(expected, d);
  if (err) throw err;
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/** Releases content that is not needed: the blob is already stored. */
export async function drain(content: ByteSource): Promise<void> {
  if (content instanceof Uint8Array) return;
  if (content instanceof Readable) {
    content.destroy();
    return;
  }
  await content[Symbol.asyncIterator]().return?.();
}
