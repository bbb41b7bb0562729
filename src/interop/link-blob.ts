/**
 * Moving blobs between the store and an Ollama models directory without a second copy: a hard
 * link where the file system allows it, else a copy that is verified as it is written.
 */
import { constants, createWriteStream, type ReadStream } from 'node:fs';
import { link, open } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { fsError } from '../errors.js';
import { VerifyStream, type Expected } from '../oci/digest.js';
import { READ_CHUNK } from '../store/blobs.js';

/** Errors that mean "no hard link here" (another file system, no permission, link limit), not a fault. */
const NO_LINK = new Set(['EXDEV', 'EPERM', 'EMLINK', 'ENOTSUP', 'EOPNOTSUPP', 'EACCES']);

/** Hard-links src as dest (which must not exist); false when the file system cannot. */
export async function tryLink(src: string, dest: string): Promise<boolean> {
  try {
    await link(src, dest);
    return true;
  } catch (e) {
    if (NO_LINK.has((e as NodeJS.ErrnoException).code ?? '')) return false;
    throw fsError(e, dest, 'cannot link');
  }
}

/** Opened without blocking: a FIFO or device where a blob should be fails its check instead of hanging. */
async function openNonBlocking(path: string): Promise<ReadStream> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  return fh.createReadStream({ highWaterMark: READ_CHUNK });
}

/** Rehashes a file; DIGEST_MISMATCH or SIZE_MISMATCH when it is not `expected`. */
export async function verifyFile(path: string, expected: Expected, signal?: AbortSignal): Promise<void> {
  await pipeline(
    await openNonBlocking(path),
    new VerifyStream(expected),
    async (src: AsyncIterable<Buffer>) => {
      for await (const _ of src);
    },
    ...(signal ? [{ signal }] : []),
  );
}

/** Copies src into a new file dest (created exclusively), verifying the bytes as they pass. */
export async function copyVerified(src: string, dest: string, expected: Expected, mode: number, signal?: AbortSignal): Promise<void> {
  await pipeline(
    await openNonBlocking(src),
    new VerifyStream(expected),
    createWriteStream(dest, { flags: 'wx', mode }),
    ...(signal ? [{ signal }] : []),
  );
}
