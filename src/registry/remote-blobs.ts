/**
 * Blob reads on a remote repository: HEAD (exists), GET (whole or from an offset with Range),
 * DELETE. Bodies are returned as streams; the caller verifies (the local store's ingest hashes
 * every byte as it lands).
 * Reference: https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pulling-blobs
 */
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import { PackError } from '../errors.js';
import { WholeBody } from '../content/whole-body.js';
import type { Descriptor } from '../oci/descriptor.js';
import { responseError } from './errcode.js';
import { discard } from './transport.js';
import { rawGet, rawGetEligible } from './raw-get.js';
import { pipelineEligible } from './pipelined-get.js';
import type { RepoContext } from './repo-context.js';

export async function blobExists(ctx: RepoContext, desc: Descriptor, signal?: AbortSignal): Promise<boolean> {
  const res = await ctx.client.request(ctx.host, { method: 'HEAD', path: ctx.path(`blobs/${desc.digest}`), scopes: ctx.pull, signal });
  await discard(res);
  if (res.status === 404) return false;
  if (res.status !== 200) throw await responseError('HEAD', res, `${ctx.name}@${desc.digest}`);
  const len = Number(res.headers['content-length']);
  return !Number.isFinite(len) || len === desc.size;
}

/** Bodies at least this big take the raw socket path over plain HTTP (see raw-get.ts). */
const RAW_MIN_BYTES = 1024 * 1024;
/** Whole bodies up to this big take the pipelined path over plain HTTP (see pipelined-get.ts). */
const PIPELINED_MAX_BYTES = 256 * 1024;

/** The blob's bytes from `offset` on (Range); a registry that ignores Range is handled too. */
export async function fetchBlob(ctx: RepoContext, desc: Descriptor, offset = 0, signal?: AbortSignal): Promise<Readable> {
  const headers: Record<string, string> = {};
  if (offset > 0) headers.range = `bytes=${offset}-`;
  const path = ctx.path(`blobs/${desc.digest}`);
  const url = new URL(path, ctx.client.baseUrl(ctx.host) + '/');
  if (offset === 0 && desc.size <= PIPELINED_MAX_BYTES && pipelineEligible(url)) {
    const pool = ctx.client.smallGets(ctx.host);
    if (!pool.declined) {
      const auth = await ctx.client.auth.header(ctx.host, ctx.pull, signal);
      const a = await pool.get(url.pathname + url.search, auth ? { authorization: auth } : {}, desc.size, signal);
      if (a) return blobBody({ status: a.status, headers: a.headers, body: new WholeBody(a.body) }, desc, 0, false);
    }
  }
  if (desc.size - offset >= RAW_MIN_BYTES && rawGetEligible(url)) {
    const auth = await ctx.client.auth.header(ctx.host, ctx.pull, signal);
    const raw = await rawGet(url, auth ? { ...headers, authorization: auth } : headers, { stallMs: ctx.client.transport.stallMs, signal });
    if (raw) return blobBody(raw, desc, offset, false);
  }
  const res = await ctx.client.request(ctx.host, { method: 'GET', path, headers, scopes: ctx.pull, signal });
  if (res.status === 404) throw await responseError('GET', res, `${ctx.name}@${desc.digest}: blob`);
  if (res.status !== 200 && res.status !== 206) throw await responseError('GET', res, `${ctx.name}@${desc.digest}: blob`);
  return blobBody(res, desc, offset, true);
}

/** A 200 or 206 answer as the bytes from `offset` on: lengths and ranges checked. */
function blobBody(res: { status: number; headers: Record<string, string | string[] | undefined>; body: Readable }, desc: Descriptor, offset: number, wrap: boolean): Readable {
  const body = (b: Readable, start: number) => (wrap ? networkErrors(b, desc, start) : b);
  if (offset > 0 && res.status === 206) {
    const start = contentRangeStart(res.headers['content-range']);
    if (start !== offset) {
      res.body.destroy();
      throw new PackError('REGISTRY', `${desc.digest}: asked for bytes from ${offset}, the registry sent from ${start}`);
    }
    return body(checkLength(res, desc.size - offset, desc), offset);
  }
  if (res.status !== 200) {
    res.body.destroy();
    throw new PackError('REGISTRY', `${desc.digest}: the registry answered ${res.status} to a whole-blob GET`);
  }
  const whole = body(checkLength(res, desc.size, desc), 0);
  if (offset === 0) return whole;
  const skip = new SkipBytes(offset);
  whole.on('error', (e) => skip.destroy(e));
  skip.on('close', () => whole.destroy());
  return whole.pipe(skip);
}

export async function deleteBlob(ctx: RepoContext, desc: Descriptor, signal?: AbortSignal): Promise<void> {
  const res = await ctx.client.request(ctx.host, { method: 'DELETE', path: ctx.path(`blobs/${desc.digest}`), scopes: ctx.del, signal });
  if (res.status !== 202 && res.status !== 200 && res.status !== 204) throw await responseError('DELETE', res, `${ctx.name}@${desc.digest}`);
  await discard(res);
}

function contentRangeStart(header: string | string[] | undefined): number {
  const m = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(String(header ?? ''));
  return m ? Number(m[1]) : -1;
}

/** A declared Content-Length other than what the descriptor says is refused before reading. */
function checkLength(res: { headers: Record<string, string | string[] | undefined>; body: Readable }, want: number, desc: Descriptor): Readable {
  const len = res.headers['content-length'];
  if (len !== undefined && Number(len) !== want) {
    res.body.destroy();
    throw new PackError('SIZE_MISMATCH', `${desc.digest}: the registry sends ${len} bytes, the manifest says ${want}`, {
      hint: 'the registry holds different content under this digest; report it to its admin',
    });
  }
  return res.body;
}

/**
 * The body as a stream whose failures are NETWORK errors (resumable), not bare "aborted" or
 * ECONNRESET: the reader may be a store ingest that knows nothing of HTTP.
 */
function networkErrors(body: Readable, desc: Descriptor, start: number): Readable {
  const out = new PassThrough({ highWaterMark: 256 * 1024 });
  let n = start;
  body.on('data', (c: Buffer) => (n += c.length));
  body.on('error', (e) => {
    out.destroy(
      e instanceof PackError
        ? e
        : new PackError('NETWORK', `${desc.digest}: connection lost after ${n} bytes (${e.message || (e as NodeJS.ErrnoException).code})`, {
            cause: e,
            hint: 'run the command again: it resumes',
          }),
    );
  });
  out.on('close', () => body.destroy());
  return body.pipe(out);
}

/** Drops the first n bytes (a registry that answered a Range request with the whole blob). */
class SkipBytes extends Transform {
  constructor(private left: number) {
    super();
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    if (this.left >= chunk.length) {
      this.left -= chunk.length;
      cb();
      return;
    }
    const out = chunk.subarray(this.left);
    this.left = 0;
    cb(null, out);
  }
}
