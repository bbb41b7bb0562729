/**
 * Blobs: GET (Range → 206), HEAD and DELETE of `/v2/<name>/blobs/<digest>` (end-2, end-10).
 * A blob is served only when it is linked into the repository; the bytes stream from the
 * storage (a pool file through two reused buffers, send-file.ts; or an object's GET) and are
 * never held in memory whole. With object storage and --s3-redirect, a GET is a 307 to a
 * short-lived presigned URL instead.
 */
import type { RequestCtx } from './context.js';
import { blobUnknown, unsupported } from './errors.js';
import { API_VERSION_HEADERS, parseRange, send } from './http-util.js';
import { checkDigest } from './router.js';

export async function getBlob(ctx: RequestCtx, name: string, digest: string): Promise<void> {
  const { req, res, store } = ctx;
  checkDigest(digest);
  const head = req.method === 'HEAD';
  const linked = await store.blobSize(name, digest, head ? ctx.touchOlderMs : undefined);
  if (linked === undefined) throw blobUnknown(digest);
  const common = {
    'content-type': 'application/octet-stream',
    'docker-content-digest': digest,
    'accept-ranges': 'bytes',
    etag: `"${digest}"`,
    'cache-control': 'max-age=31536000',
  };
  if (head) {
    send(req, res, 200, { ...common, 'content-length': linked });
    return;
  }
  const redirect = store.blobRedirect ? await store.blobRedirect(digest) : undefined;
  if (redirect !== undefined) {
    // Object storage with --s3-redirect: the bytes go from the bucket straight to the client.
    send(req, res, 307, { location: redirect, 'docker-content-digest': digest, 'cache-control': 'no-store' });
    return;
  }
  const blob = await store.openBlob(digest, name);
  if (!blob) throw blobUnknown(digest); // collected meanwhile
  try {
    const size = blob.size;
    const range = parseRange(req.headers.range, size);
    if (range === 'unsatisfiable') {
      send(req, res, 416, { ...common, 'content-range': `bytes */${size}` });
      return;
    }
    const start = range?.start ?? 0;
    const end = range?.end ?? size - 1;
    res.writeHead(range ? 206 : 200, {
      ...API_VERSION_HEADERS,
      ...common,
      'content-length': end - start + 1,
      ...(range ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}),
    });
    if (size === 0) {
      res.end();
      return;
    }
    await blob.send(start, end, res);
  } finally {
    await blob.close();
  }
}

export async function deleteBlob(ctx: RequestCtx, name: string, digest: string): Promise<void> {
  if (ctx.deletes === 'none') throw unsupported('deleting is disabled on this registry');
  checkDigest(digest);
  if (!(await ctx.store.unlinkBlob(name, digest))) throw blobUnknown(digest);
  send(ctx.req, ctx.res, 202, { 'docker-content-digest': digest });
}
