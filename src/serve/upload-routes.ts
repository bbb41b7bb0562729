/**
 * Blob uploads (end-4a, end-4b, end-5, end-6, end-11, end-13, end-14):
 *   POST   /v2/<name>/blobs/uploads/                     a session (202, Location)
 *   POST   /v2/<name>/blobs/uploads/?digest=D            the whole blob in one request (201)
 *   POST   /v2/<name>/blobs/uploads/?mount=D[&from=N]    link a blob the caller may read elsewhere (201), else a session (202)
 *   PATCH  /v2/<name>/blobs/uploads/<uuid>               a chunk, in order (Content-Range) or streamed (202; 416 out of order)
 *   GET    /v2/<name>/blobs/uploads/<uuid>               status (204, Range)
 *   PUT    /v2/<name>/blobs/uploads/<uuid>?digest=D      last chunk (optional) and close (201)
 *   DELETE /v2/<name>/blobs/uploads/<uuid>               cancel (204)
 */
import type { RequestCtx } from './context.js';
import { ServeError } from './errors.js';
import { contentLength, hasBody, parseContentRange, send } from './http-util.js';
import { checkDigest, checkName } from './router.js';
import type { UploadSession as Session } from './storage.js';
import { rangeError, uploadHeaders } from './uploads.js';

/** Repositories searched for a mount without `from`. */
const MAX_MOUNT_SEARCH = 1000;

const uploadLocation = (name: string, id: string): string => `/v2/${name}/blobs/uploads/${id}`;
const blobLocation = (name: string, digest: string): string => `/v2/${name}/blobs/${digest}`;

function created(ctx: RequestCtx, name: string, digest: string): void {
  send(ctx.req, ctx.res, 201, { location: blobLocation(name, digest), 'docker-content-digest': digest });
}

export async function postUpload(ctx: RequestCtx, name: string): Promise<void> {
  const { query } = ctx;
  const mount = query.get('mount');
  if (mount !== null) {
    checkDigest(mount);
    const from = query.get('from');
    if (from !== null) checkName(from);
    if (await tryMount(ctx, name, mount, from)) {
      created(ctx, name, mount);
      return;
    }
  }
  const digest = mount === null ? query.get('digest') : null;
  if (digest !== null) {
    const parsed = checkDigest(digest);
    // Transient: removed below whatever happens, so it is made even at --max-upload-sessions.
    const s = await ctx.uploads.create(name, { transient: true });
    const location = uploadLocation(name, s.id);
    try {
      await ctx.uploads.append(s, ctx.req, { length: contentLength(ctx.req), location, digest });
      await finish(ctx, name, s, digest, parsed, location);
    } catch (e) {
      await ctx.uploads.cancel(s).catch(() => undefined);
      throw e;
    }
    created(ctx, name, digest);
    return;
  }
  if (hasBody(ctx.req) && mount === null) {
    throw new ServeError(400, 'BLOB_UPLOAD_INVALID', 'a POST with a body needs ?digest=<digest> (or send it with PATCH/PUT to a session)');
  }
  // A session that outlives this request (also a mount that found nothing): counted against
  // --max-upload-sessions, 429 at the limit. A mount that succeeded has answered above.
  const s = await ctx.uploads.create(name);
  send(ctx.req, ctx.res, 202, uploadHeaders(s, 0, uploadLocation(name, s.id)));
}

/** Links `digest` into `name` from `from` (or any repository the caller may read); true if done. */
async function tryMount(ctx: RequestCtx, name: string, digest: string, from: string | null): Promise<boolean> {
  const { store, auth, who } = ctx;
  // Already here: its link is touched (as a HEAD does), so that a collection spares it until the
  // manifest that will name it arrives; under the gate, so none is halfway through deciding.
  if (await ctx.gate.withShared(async () => (await store.blobSize(name, digest, ctx.touchOlderMs)) !== undefined)) return true;
  let source: string | undefined;
  if (from !== null) {
    if (auth.canPull(who, from) && (await store.blobSize(from, digest)) !== undefined) source = from;
  } else {
    const repos = (await store.listRepositories()).filter((r) => r !== name && auth.canPull(who, r)).slice(0, MAX_MOUNT_SEARCH);
    for (const r of repos) {
      if ((await store.blobSize(r, digest)) !== undefined) {
        source = r;
        break;
      }
    }
  }
  if (!source) return false;
  const src = source;
  return ctx.gate.withShared(async () => {
    if ((await store.blobSize(src, digest)) === undefined) return false; // deleted meanwhile
    await store.linkBlob(name, digest);
    return true;
  });
}

/** Checks the digest, then (under the gate, so a collection cannot come between) commits and links. */
async function finish(ctx: RequestCtx, name: string, s: Session, digest: string, parsed: ReturnType<typeof checkDigest>, location: string): Promise<void> {
  await ctx.uploads.complete(s, digest, parsed, location, (commit) =>
    ctx.gate.withShared(async () => {
      await commit();
      await ctx.store.linkBlob(name, digest);
    }),
  );
}

/** The chunk's place: Content-Range (checked against Content-Length) or, without it, the end. */
function chunk(ctx: RequestCtx, s: Session, size: () => Promise<number>, location: string): Promise<{ start?: number; length?: number }> {
  const cr = parseContentRange(ctx.req.headers['content-range'] as string | undefined);
  const len = contentLength(ctx.req);
  if (cr === 'invalid') return size().then((n) => Promise.reject(rangeError(s, n, location, 'Content-Range must be <start>-<end>')));
  if (cr && len !== undefined && len !== cr.end - cr.start + 1) {
    return Promise.reject(new ServeError(400, 'SIZE_INVALID', { 'content-range': `${cr.start}-${cr.end}`, 'content-length': len }));
  }
  const out: { start?: number; length?: number } = {};
  if (cr) out.start = cr.start;
  const length = len ?? (cr ? cr.end - cr.start + 1 : undefined);
  if (length !== undefined) out.length = length;
  return Promise.resolve(out);
}

export async function patchUpload(ctx: RequestCtx, name: string, id: string): Promise<void> {
  const s = await ctx.uploads.open(name, id);
  const location = uploadLocation(name, s.id);
  const where = await chunk(ctx, s, () => ctx.uploads.size(s), location);
  const size = await ctx.uploads.append(s, ctx.req, { ...where, location });
  send(ctx.req, ctx.res, 202, uploadHeaders(s, size, location));
}

export async function uploadStatus(ctx: RequestCtx, name: string, id: string): Promise<void> {
  const s = await ctx.uploads.open(name, id);
  const location = uploadLocation(name, s.id);
  send(ctx.req, ctx.res, 204, uploadHeaders(s, await ctx.uploads.size(s), location));
}

export async function putUpload(ctx: RequestCtx, name: string, id: string): Promise<void> {
  const s = await ctx.uploads.open(name, id);
  const location = uploadLocation(name, s.id);
  const digest = ctx.query.get('digest');
  if (digest === null) throw new ServeError(400, 'DIGEST_INVALID', { reason: 'no ?digest= given' }, {}, 'the closing PUT needs ?digest=<digest of the whole blob>');
  const parsed = checkDigest(digest);
  if (hasBody(ctx.req)) {
    const where = await chunk(ctx, s, () => ctx.uploads.size(s), location);
    await ctx.uploads.append(s, ctx.req, { ...where, location, digest });
  }
  await finish(ctx, name, s, digest, parsed, location);
  created(ctx, name, digest);
}

export async function deleteUpload(ctx: RequestCtx, name: string, id: string): Promise<void> {
  const s = await ctx.uploads.open(name, id);
  await ctx.uploads.cancel(s);
  send(ctx.req, ctx.res, 204);
}
