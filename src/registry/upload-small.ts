/**
 * Small blobs in one request: `POST /v2/<name>/blobs/uploads/?digest=<d>` with the bytes (the
 * spec's single-POST upload). A registry that takes it answers 201 and the blob costs one round
 * trip instead of two (POST, then PUT). One that does not (docker-registry 2.8) answers 202 with an
 * empty session, having ignored the body; the caller then PUTs the bytes it already holds, and the
 * host is remembered: its later blobs open a plain session.
 * Reference: https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pushing-a-blob-monolithically
 */
import type { Readable } from 'node:stream';
import { PackError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { RegistryClient } from './client.js';
import { responseError } from './errcode.js';
import type { RepoContext } from './repo-context.js';
import { discard, type HttpResponse } from './transport.js';

/** Blobs up to this size are read into memory and offered in the POST. */
export const SINGLE_POST_MAX_BYTES = 256 * 1024;

/** Per client, per host: whether a single POST was taken (true) or answered with a session (false). */
const singlePostTaken = new WeakMap<RegistryClient, Map<string, boolean>>();

function known(client: RegistryClient): Map<string, boolean> {
  let m = singlePostTaken.get(client);
  if (!m) singlePostTaken.set(client, (m = new Map()));
  return m;
}

/** Whether a single POST is worth trying for this blob on this host (not known to be refused). */
export function trySinglePost(ctx: RepoContext, desc: Descriptor): boolean {
  return desc.size <= SINGLE_POST_MAX_BYTES && known(ctx.client).get(ctx.host) !== false;
}

/** Whether this host is known to take single POSTs. */
export function takesSinglePost(ctx: RepoContext): boolean {
  return known(ctx.client).get(ctx.host) === true;
}

/**
 * Sends the blob in the POST. Resolves `undefined` when the registry stored it (201, digest
 * checked), else the session it opened instead (202) for the caller to finish with a PUT.
 */
export async function singlePost(ctx: RepoContext, desc: Descriptor, bytes: Buffer, signal?: AbortSignal): Promise<HttpResponse | undefined> {
  const res = await ctx.client.request(ctx.host, {
    method: 'POST',
    path: ctx.path(`blobs/uploads/?digest=${encodeURIComponent(desc.digest)}`),
    headers: { 'content-type': 'application/octet-stream' },
    body: bytes,
    scopes: ctx.push,
    signal,
  });
  if (res.status === 202) {
    known(ctx.client).set(ctx.host, false);
    await discard(res);
    return res;
  }
  if (res.status !== 201) throw await responseError('POST', res, `${ctx.name}: upload of ${desc.digest}`);
  known(ctx.client).set(ctx.host, true);
  await discard(res);
  const got = res.headers['docker-content-digest'];
  if (got && got !== desc.digest) {
    throw new PackError('DIGEST_MISMATCH', `${desc.digest}: the registry stored the upload as ${got}`, { hint: 'push again; if it persists, the registry is faulty' });
  }
  return undefined;
}

/**
 * The whole source, which must hold exactly the descriptor's size: one byte short or long is
 * corruption, told as `exactSize` tells it (`sizeError`).
 */
export async function readExact(src: Readable, desc: Descriptor, sizeError: (desc: Descriptor, n: number, ended: boolean) => PackError): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of src as AsyncIterable<Buffer>) {
      n += c.length;
      if (n > desc.size) throw sizeError(desc, n, false);
      chunks.push(c);
    }
  } finally {
    src.destroy();
  }
  if (n !== desc.size) throw sizeError(desc, n, true);
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, n);
}
