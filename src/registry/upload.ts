/**
 * Blob uploads: POST a session, then one monolithic PUT (blobs up to the chunk size) or PATCHes
 * of `chunkSize` bytes with Content-Range and a closing PUT `?digest=`. A PATCH that fails asks
 * the registry how far it got (GET on the session) and goes on from there, re-reading the source
 * at that offset; anything else starts a new session. Cross-repository mounts are tried first.
 * Reference: https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pushing-blobs
 */
import { Readable, Transform } from 'node:stream';
import { PackError, isTransient } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { passRecycling, type OpenAt, type PushOptions } from '../content/storage.js';
import { repositoryScope } from './auth/challenge.js';
import { responseError, type RegistryError } from './errcode.js';
import { blobExists } from './remote-blobs.js';
import { sleep } from '../internal/sleep.js';
import { discard, type HttpResponse } from './transport.js';
import type { RepoContext } from './repo-context.js';
import { readExact, singlePost, trySinglePost } from './upload-small.js';

/** Blobs up to this go in one PUT; larger ones in one PATCH (or PATCHes of `chunkSize` when it is given). */
export const DEFAULT_CHUNK_SIZE = 64 * 1024 * 1024;
/** Whole-upload attempts (a new session each) after network failures or a token that expired. */
const UPLOAD_ATTEMPTS = 3;

export interface UploadOptions extends PushOptions {
  /** 0: always one PUT. Given: blobs past it go in PATCHes of this size. Default: one PUT up to DEFAULT_CHUNK_SIZE, one PATCH past it. */
  chunkSize?: number;
}

const OCTET = { 'content-type': 'application/octet-stream' };

/** Tries to mount the blob from another repository of the same registry; true when it did. */
export async function mountBlob(ctx: RepoContext, desc: Descriptor, from: string, signal?: AbortSignal): Promise<boolean> {
  const q = `blobs/uploads/?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(from)}`;
  const scopes = [...ctx.push, repositoryScope(from, ['pull'])];
  const res = await ctx.client.request(ctx.host, { method: 'POST', path: ctx.path(q), scopes, signal });
  if (res.status === 201) {
    await discard(res);
    return true;
  }
  if (res.status === 202) {
    // Not mounted; the registry opened an upload session instead. Cancel it (best effort).
    await discard(res);
    const loc = res.headers.location;
    if (loc) {
      const del = await ctx.client.request(ctx.host, { method: 'DELETE', path: String(loc), scopes: ctx.push, signal }).catch(() => undefined);
      if (del) await discard(del);
    }
    return false;
  }
  if (res.status === 401 || res.status === 403 || res.status === 404) {
    await discard(res); // no pull access to `from`, or it is gone: upload instead
    return false;
  }
  throw await responseError('POST', res, `${ctx.name}: mount of ${desc.digest} from ${from}`);
}

/** Uploads a blob the registry does not have, re-reading the source with `open` after a fault. */
export async function uploadBlob(ctx: RepoContext, desc: Descriptor, open: OpenAt, opts: UploadOptions = {}): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await uploadOnce(ctx, desc, open, opts);
      return;
    } catch (e) {
      if (opts.signal?.aborted) throw e;
      // The closing PUT may have been applied although its answer was lost: ask before re-sending.
      if (await blobExists(ctx, desc, opts.signal).catch(() => false)) return;
      const status = (e as { status?: number }).status;
      const again =
        isTransient(e) ||
        status === 416 || // the session and we disagree on the offset: start a new one
        (status === 404 && (e as RegistryError).has?.('BLOB_UPLOAD_UNKNOWN'));
      if (!again || attempt >= UPLOAD_ATTEMPTS) throw e;
      await sleep(200 * attempt, opts.signal);
    }
  }
}


async function startSession(ctx: RepoContext, signal?: AbortSignal): Promise<{ location: string; minChunk: number }> {
  const res = await ctx.client.request(ctx.host, { method: 'POST', path: ctx.path('blobs/uploads/'), scopes: ctx.push, signal });
  if (res.status !== 202) throw await responseError('POST', res, `${ctx.name}: start upload`);
  await discard(res);
  return { location: locationOf(ctx, res), minChunk: Number(res.headers['oci-chunk-min-length']) || 0 };
}

function locationOf(ctx: RepoContext, res: HttpResponse): string {
  const loc = res.headers.location;
  if (!loc) throw new PackError('REGISTRY', `${ctx.host}/${ctx.name}: upload response without a Location header`);
  // Relative locations are resolved against the registry; absolute ones are used as given.
  return new URL(String(loc), ctx.client.baseUrl(ctx.host) + '/').toString();
}

function withDigest(location: string, digest: string): string {
  const u = new URL(location);
  u.searchParams.set('digest', digest);
  return u.toString();
}

async function uploadOnce(ctx: RepoContext, desc: Descriptor, open: OpenAt, opts: UploadOptions): Promise<void> {
  let bytes: Buffer | undefined;
  let session: { location: string; minChunk: number } | undefined;
  // A --chunk-size below the blob's size asks for PATCHes: honoured.
  if (trySinglePost(ctx, desc) && !(opts.chunkSize && opts.chunkSize < desc.size)) {
    bytes = await readExact(await open(0), desc, sizeError);
    const opened = await singlePost(ctx, desc, bytes, opts.signal);
    if (!opened) {
      opts.onProgress?.(desc.size, 'transferring');
      return;
    }
    session = { location: locationOf(ctx, opened), minChunk: 0 };
  }
  session ??= await startSession(ctx, opts.signal);
  try {
    if (bytes) await putBytes(ctx, desc, bytes, session.location, opts);
    else await sendSession(ctx, desc, open, opts, session);
  } catch (e) {
    // The session will not be used again (a retry, or the next run, opens a new one): do not leave
    // it on the server. Also when aborted (Ctrl-C, or a sibling blob failed), within 2 s.
    await cancelSession(ctx, session.location);
    throw e;
  }
}

/** Closes a session with the whole blob, held in memory (so a retry can send it again). */
async function putBytes(ctx: RepoContext, desc: Descriptor, bytes: Buffer, location: string, opts: UploadOptions): Promise<void> {
  const res = await ctx.client.request(ctx.host, { method: 'PUT', path: withDigest(location, desc.digest), headers: OCTET, body: bytes, scopes: ctx.push, signal: opts.signal });
  await finish(ctx, desc, res, 'PUT');
  opts.onProgress?.(desc.size, 'transferring');
}

/** DELETE an upload session, best effort (a session already closed or expired answers 404). */
async function cancelSession(ctx: RepoContext, location: string): Promise<void> {
  const signal = AbortSignal.timeout(2000);
  const res = await ctx.client.request(ctx.host, { method: 'DELETE', path: location, scopes: ctx.push, noRetry: true, signal }).catch(() => undefined);
  if (res) await discard(res);
}

/**
 * The source from `offset` on, checked to hold exactly the descriptor's size: a stored blob one
 * byte short or long is corruption, told at once (not a body the registry waits for until the
 * stall time-out, nor a 400 for bytes past Content-Length). Errors of the source pass through.
 */
export function exactSize(src: Readable, desc: Descriptor, offset: number): Readable {
  let n = offset;
  const t = new Transform({
    transform(chunk: Buffer, _e, cb) {
      n += chunk.length;
      cb(n > desc.size ? sizeError(desc, n, false) : null, n > desc.size ? undefined : chunk);
    },
    flush(cb) {
      cb(n === desc.size ? null : sizeError(desc, n, true));
    },
  });
  src.on('error', (e) => t.destroy(e));
  t.on('close', () => src.destroy());
  // Chunks pass through unchanged: the socket writer may hand them back to a recycling source.
  return passRecycling(src.pipe(t), src);
}

function sizeError(desc: Descriptor, n: number, ended: boolean): PackError {
  const what = ended ? `ends after ${n} of its ${desc.size} bytes` : `holds more than its ${desc.size} bytes`;
  return new PackError('CORRUPT', `${desc.digest}: the blob to upload ${what}: the source copy is corrupt`, {
    hint: 'if it comes from the local store, mpk verify lists what is damaged; pull or build that model again',
  });
}

async function sendSession(ctx: RepoContext, desc: Descriptor, open: OpenAt, opts: UploadOptions, session: { location: string; minChunk: number }): Promise<void> {
  const signal = opts.signal;
  // session.location follows the PATCH answers, so a failure cancels the session where it stands.
  const at = () => session.location;
  // Up to the chunk size (default 64 MiB) one PUT carries the blob. Past it, PATCHes: of the
  // chunk size when one is given, else one PATCH with the whole blob (as docker and skopeo send
  // it). Each PATCH costs docker-registry a session reload and a hash-state save: 512 MiB in
  // 64 MiB PATCHes took 2.98-3.08 s, in one request 2.12-2.58 s (registry CPU 1.9 → 1.6 s).
  // A PATCH cut short is still resumed from the offset the registry reports.
  const single = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const chunk = opts.chunkSize === undefined ? Infinity : Math.max(opts.chunkSize, session.minChunk); // the minimum applies to chunks only
  if (single === 0 || desc.size <= single) {
    const body = counted(exactSize(await open(0), desc, 0), 0, opts);
    const res = await ctx.client
      .request(ctx.host, {
        method: 'PUT',
        path: withDigest(at(), desc.digest),
        headers: { ...OCTET, 'content-length': String(desc.size) },
        body,
        scopes: ctx.push,
        signal,
      })
      .catch((e) => {
        body.destroy();
        throw e;
      });
    await finish(ctx, desc, res, 'PUT');
    return;
  }
  let offset = 0;
  let source: Readable | undefined;
  let iter: AsyncIterator<Buffer> | undefined;
  let carry: Buffer | undefined;
  let retries = 0;
  try {
    while (offset < desc.size) {
      if (!source) {
        source = exactSize(await open(offset), desc, offset);
        iter = (source as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
        carry = undefined;
      }
      const len = Math.min(chunk, desc.size - offset);
      const start = offset;
      const take = async function* (): AsyncGenerator<Buffer> {
        let left = len;
        while (left > 0) {
          let buf = carry;
          carry = undefined;
          if (!buf) {
            const r = await iter!.next();
            if (r.done) throw sizeError(desc, start + len - left, true); // exactSize says so first
            buf = r.value;
          }
          if (buf.length > left) {
            carry = buf.subarray(left);
            buf = buf.subarray(0, left);
          }
          left -= buf.length;
          yield buf;
        }
      };
      try {
        const res = await ctx.client.request(ctx.host, {
          method: 'PATCH',
          path: at(),
          headers: { ...OCTET, 'content-length': String(len), 'content-range': `${start}-${start + len - 1}` },
          // One PATCH for the whole blob never splits a chunk: its chunks may go back to the source.
          body: counted(chunk === Infinity ? passRecycling(Readable.from(take(), { objectMode: false }), source) : Readable.from(take(), { objectMode: false }), start, opts),
          scopes: ctx.push,
          signal,
        });
        if (res.status !== 202) throw await responseError('PATCH', res, `${ctx.name}: upload of ${desc.digest}`);
        await discard(res);
        session.location = locationOf(ctx, res);
        offset = start + len;
        retries = 0;
      } catch (e) {
        if (signal?.aborted || !isTransient(e) || ++retries > 3) throw e;
        // Ask the registry how much of the upload it kept, and go on from there.
        source.destroy();
        source = undefined;
        const kept = await uploadStatus(ctx, at(), signal);
        // `0-0` means 0 or 1 bytes held (docker-registry 2.8 says it for both): not safe to go on
        // from there, and less than what we had sent means the session lost data. New session.
        if (kept === undefined || kept <= 1 || kept > start + len) throw e;
        offset = kept;
      }
    }
    // Every byte is sent: the source must end here (a longer one is caught before the closing PUT).
    if (source && (carry?.length || !(await iter!.next()).done)) throw sizeError(desc, desc.size + 1, false);
  } finally {
    source?.destroy();
  }
  const res = await ctx.client.request(ctx.host, { method: 'PUT', path: withDigest(at(), desc.digest), headers: OCTET, scopes: ctx.push, signal });
  await finish(ctx, desc, res, 'PUT');
}

/** Bytes the registry holds for an upload session (GET → 204 with `Range: 0-N`), or undefined. */
async function uploadStatus(ctx: RepoContext, location: string, signal?: AbortSignal): Promise<number | undefined> {
  const res = await ctx.client.request(ctx.host, { method: 'GET', path: location, scopes: ctx.push, signal });
  await discard(res);
  if (res.status !== 204) return undefined;
  const m = /^(?:bytes=)?0-(\d+)$/.exec(String(res.headers.range ?? ''));
  return m ? Number(m[1]) + 1 : 0;
}

async function finish(ctx: RepoContext, desc: Descriptor, res: HttpResponse, method: string): Promise<void> {
  if (res.status !== 201) throw await responseError(method, res, `${ctx.name}: upload of ${desc.digest}`);
  await discard(res);
  const got = res.headers['docker-content-digest'];
  if (got && got !== desc.digest) {
    throw new PackError('DIGEST_MISMATCH', `${desc.digest}: the registry stored the upload as ${got}`, { hint: 'push again; if it persists, the registry is faulty' });
  }
}

/** Reports bytes as they leave, from `base` on. */
function counted(src: Readable, base: number, opts: PushOptions): Readable {
  if (!opts.onProgress) return src;
  let n = base;
  const onProgress = opts.onProgress;
  const t = new Transform({
    transform(chunk: Buffer, _e, cb) {
      n += chunk.length;
      onProgress(n, 'transferring');
      cb(null, chunk);
    },
  });
  src.on('error', (e) => t.destroy(e));
  t.on('close', () => src.destroy());
  return passRecycling(src.pipe(t), src);
}
