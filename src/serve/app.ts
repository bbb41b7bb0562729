/**
 * One request: route, method check, authentication and authorization, admission (request bodies
 * that carry blob bytes are limited in number; beyond the queue a 429), then the handler. Every
 * failure is answered with a spec error body; a client that went away gets nothing.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { MAX_MANIFEST_BYTES } from '../oci/manifest.js';
import type { Action } from './access.js';
import type { Need } from './auth.js';
import { deleteBlob, getBlob } from './blob-routes.js';
import type { RequestCtx, Services } from './context.js';
import { BodyInterrupted, ServeError, isOutOfSpace, outOfSpace } from './errors.js';
import { contentLength, send, sendError, sendJson } from './http-util.js';
import { listCatalog, listReferrers, listTags } from './listing-routes.js';
import { deleteManifest, getManifest, putManifest } from './manifest-routes.js';
import { route, splitTarget, type Route } from './router.js';
import type { TokenService } from './token.js';
import { isCatalogPath, type Catalog } from './catalog/catalog.js';
import { deleteUpload, patchUpload, postUpload, putUpload, uploadStatus } from './upload-routes.js';

const METHODS: Record<Route['kind'], string[]> = {
  base: ['GET', 'HEAD'],
  catalog: ['GET'],
  healthz: ['GET', 'HEAD'],
  token: ['GET', 'POST'],
  tags: ['GET'],
  referrers: ['GET'],
  manifest: ['GET', 'HEAD', 'PUT', 'DELETE'],
  blob: ['GET', 'HEAD', 'DELETE'],
  uploads: ['POST'],
  upload: ['GET', 'PATCH', 'PUT', 'DELETE'],
  unknown: [],
};

export interface AppOptions extends Services {
  tokens?: TokenService;
  /** The web catalog (pages at `/`, `/r/…`, `/-/…`); none when started with --no-catalog. */
  catalog?: Catalog;
  /** Requests writing blob bytes at once (default 64); more wait in a queue of 4× that, then 429. */
  maxUploads?: number;
  /**
   * Manifest bodies are read into memory (≤ 4 MiB each): the bytes that PUTs may hold at once,
   * reserved by their Content-Length (default 64 MiB); more wait in a queue of 256, then 429.
   */
  manifestMemoryBytes?: number;
  /** Set on a pull-through cache: why writes are refused (405 UNSUPPORTED). */
  readOnly?: string;
  /** Receives what a request did, for the access log: the user it ran as. */
  onIdentity?(req: IncomingMessage, user: string): void;
  /** A request the server cut without a whole answer, and why (for the access log). */
  onCut?(req: IncomingMessage, reason: string): void;
  /** Unexpected errors (answered 500). */
  onInternalError?(err: unknown, req: IncomingMessage): void;
}

/**
 * Bounds what runs at once by weight (a request each, or the bytes it may hold in memory), first
 * come first served; past `maxQueued` waiting, a 429.
 */
class Admission {
  private used = 0;
  private readonly queue: Array<{ weight: number; go: () => void }> = [];
  constructor(
    private readonly capacity: number,
    private readonly maxQueued: number,
    private readonly busy: string,
  ) {}
  async run<T>(fn: () => Promise<T>, weight = 1): Promise<T> {
    const w = Math.min(weight, this.capacity);
    if (this.queue.length > 0 || this.used + w > this.capacity) {
      if (this.queue.length >= this.maxQueued) throw new ServeError(429, 'TOOMANYREQUESTS', this.busy, { 'retry-after': '1' });
      await new Promise<void>((go) => this.queue.push({ weight: w, go }));
    } else this.used += w;
    try {
      return await fn();
    } finally {
      this.used -= w;
      while (this.queue.length > 0 && this.used + this.queue[0]!.weight <= this.capacity) {
        const next = this.queue.shift()!;
        this.used += next.weight;
        next.go();
      }
    }
  }
}

export function createApp(opts: AppOptions): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const max = opts.maxUploads ?? 64;
  const admission: Admissions = {
    uploads: new Admission(max, max * 4, 'too many uploads at once'),
    manifests: new Admission(Math.max(opts.manifestMemoryBytes ?? 64 * 1024 * 1024, MAX_MANIFEST_BYTES), 256, 'too many manifest pushes at once'),
  };
  return async (req, res) => {
    try {
      await dispatch(req, res, opts, admission);
    } catch (e) {
      if (e instanceof BodyInterrupted) {
        opts.onCut?.(req, e.message);
        res.destroy();
        return;
      }
      if (res.headersSent) opts.onCut?.(req, `the server failed mid-answer (${e instanceof Error ? e.message : String(e)})`);
      // A full disk anywhere (a new session's folder, a manifest, a tag) is the same 507.
      const err = isOutOfSpace(e) && !(e instanceof ServeError) ? outOfSpace(`${req.method ?? 'GET'} could not store what it needs`) : e;
      if (!(err instanceof ServeError) || err.status >= 500) opts.onInternalError?.(e, req);
      sendError(req, res, err);
    }
  };
}

interface Admissions {
  uploads: Admission;
  manifests: Admission;
}

async function dispatch(req: IncomingMessage, res: ServerResponse, opts: AppOptions, admission: Admissions): Promise<void> {
  const method = req.method ?? 'GET';
  const { path, query } = splitTarget(req.url ?? '/');
  if (opts.catalog && isCatalogPath(path)) return opts.catalog.handle(req, res, path, query);
  const r = route(path);
  const allowed = METHODS[r.kind];
  if (r.kind === 'unknown') throw new ServeError(404, 'UNSUPPORTED', { path: path.length > 200 ? `${path.slice(0, 200)}…` : path, reason: 'no such endpoint' });
  if (!allowed.includes(method)) throw new ServeError(405, 'UNSUPPORTED', `${method} is not allowed here`, { allow: allowed.join(', ') });
  if (r.kind === 'healthz') {
    sendJson(req, res, 200, { status: 'ok' });
    return;
  }
  if (r.kind === 'token') {
    if (!opts.tokens) throw new ServeError(404, 'UNSUPPORTED', { reason: 'this registry does not issue tokens (not started with --token-users)' });
    await opts.tokens.handle(req, res, query);
    return;
  }
  if (opts.readOnly && method !== 'GET' && method !== 'HEAD' && ['manifest', 'blob', 'uploads', 'upload'].includes(r.kind)) {
    throw new ServeError(405, 'UNSUPPORTED', opts.readOnly, { allow: 'GET, HEAD' }, opts.readOnly);
  }
  const who = await opts.auth.identify(req);
  opts.onIdentity?.(req, who.user);
  opts.auth.authorize(req, who, need(r, method));
  const ctx: RequestCtx = { ...opts, req, res, query, who };
  switch (r.kind) {
    case 'base':
      send(req, res, 200, { 'content-type': 'application/json' }, '{}');
      return;
    case 'catalog':
      return listCatalog(ctx);
    case 'tags':
      return listTags(ctx, r.name);
    case 'referrers':
      return listReferrers(ctx, r.name, r.digest);
    case 'manifest':
      if (method === 'PUT') {
        const declared = contentLength(req);
        return admission.manifests.run(() => putManifest(ctx, r.name, r.reference), Math.max(1, Math.min(declared ?? MAX_MANIFEST_BYTES, MAX_MANIFEST_BYTES)));
      }
      if (method === 'DELETE') return deleteManifest(ctx, r.name, r.reference);
      return getManifest(ctx, r.name, r.reference);
    case 'blob':
      if (method === 'DELETE') return deleteBlob(ctx, r.name, r.digest);
      return getBlob(ctx, r.name, r.digest);
    case 'uploads':
      return query.has('digest') ? admission.uploads.run(() => postUpload(ctx, r.name)) : postUpload(ctx, r.name);
    case 'upload':
      if (method === 'GET') return uploadStatus(ctx, r.name, r.id);
      if (method === 'DELETE') return deleteUpload(ctx, r.name, r.id);
      return admission.uploads.run(() => (method === 'PATCH' ? patchUpload(ctx, r.name, r.id) : putUpload(ctx, r.name, r.id)));
  }
}

function need(r: Route, method: string): Need {
  if (r.kind === 'base') return { kind: 'base' };
  if (r.kind === 'catalog') return { kind: 'catalog' };
  if (!('name' in r)) return { kind: 'base' };
  let action: Action = 'pull';
  if (method === 'DELETE' && (r.kind === 'manifest' || r.kind === 'blob')) action = 'delete';
  else if (r.kind === 'uploads' || r.kind === 'upload' || method === 'PUT') action = 'push';
  return { kind: 'repo', name: r.name, actions: [action] };
}
