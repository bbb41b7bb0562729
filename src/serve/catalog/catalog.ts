/**
 * The web catalog of `mpk serve`: HTML pages at `/`, `/r/NAME` and `/r/NAME/-/REF`, sign-in at
 * `/-/login`, the JSON API at `/-/api/…`, assets at `/-/assets/…`. None of these paths can be a
 * registry route (those start with /v2/). Every answer carries a strict CSP (no inline script or
 * style), nosniff and frame-ancestors 'none'; pages and API answers depend on who asks, so they
 * are not cached. A repository the viewer may not pull is answered exactly as one that does not
 * exist.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Auth } from '../auth.js';
import { ServeError } from '../errors.js';
import { send, type Headers } from '../http-util.js';
import { Lru } from '../lru.js';
import type { RegistryStorage } from '../storage.js';
import { ASSETS } from './assets/index.js';
import { CatalogIndex } from './catalog-index.js';
import { html } from './html.js';
import { page, type Chrome } from './layout.js';
import { modelDetails, pullCommands, type ModelDetailsView } from './model-details.js';
import { catalogApi, modelApi, repoApi } from './api.js';
import { catalogBody } from './page-catalog.js';
import { errorBody, modelBody, repoBody } from './page-model.js';
import { handleLogin, handleLogout, loginPage } from './login.js';
import { parseCatalogQuery, parsePagePath } from './paths.js';
import { Sessions, identifyViewer, mayPull, type Viewer } from './viewer.js';

export const SECURITY_HEADERS: Headers = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
};
const DYNAMIC: Headers = { ...SECURITY_HEADERS, 'cache-control': 'no-store', vary: 'Cookie, Authorization' };

const HOST_RE = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

export function isCatalogPath(path: string): boolean {
  return path === '/' || path.startsWith('/r/') || path.startsWith('/-/');
}

export interface CatalogOptions {
  store: RegistryStorage;
  auth: Auth;
  /** Walk the whole registry again once the index is this old (shared storage: others write it too); 0 never. */
  rewalkMs?: number;
  /** scheme://host:port of the server, for a request without a usable Host header. */
  base: () => string;
  /** Who a request ran as, for the access log. */
  onIdentity?(req: IncomingMessage, user: string): void;
}

export class Catalog {
  readonly index: CatalogIndex;
  readonly sessions = new Sessions();
  /** Model pages' data by repository generation: at most 2,000, and 64 MiB of JSON (cards can be 512 KiB). */
  private readonly details = new Lru<string, ModelDetailsView>(2000, 64 * 1024 * 1024);

  constructor(private readonly opts: CatalogOptions) {
    this.index = new CatalogIndex(opts.store, opts.rewalkMs ?? 0);
  }

  /** A manifest or tag of `name` changed (the registry calls this after each put and delete). */
  changed(name: string): void {
    this.index.changed(name);
  }

  async handle(req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams): Promise<void> {
    const api = path.startsWith('/-/api/');
    try {
      await this.route(req, res, path, query, api);
    } catch (e) {
      if (!(e instanceof ServeError)) throw e;
      if (api) return sendJsonDoc(req, res, e.status, { error: e.code, message: e.message }, e.headers);
      const chrome: Chrome = { user: '', canLogin: this.opts.auth.mode !== 'none', here: '/' };
      sendHtml(req, res, e.status, page('Error', chrome, errorBody(e.status === 429 ? 'Too many attempts' : 'Error', e.message, false)), e.headers);
    }
  }

  private async route(req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams, api: boolean): Promise<void> {
    const method = req.method ?? 'GET';
    const asset = ASSETS.get(path);
    if (asset) {
      if (method !== 'GET' && method !== 'HEAD') throw notAllowed('GET, HEAD');
      return send(req, res, 200, { ...SECURITY_HEADERS, 'content-type': asset.type, 'cache-control': 'public, max-age=31536000, immutable' }, asset.body);
    }
    if (path === '/-/login' || path === '/-/logout') {
      const ctx = { req, res, auth: this.opts.auth, sessions: this.sessions, headers: DYNAMIC };
      if (path === '/-/logout') {
        if (method !== 'POST') throw notAllowed('POST');
        return handleLogout(ctx);
      }
      if (method === 'POST') return handleLogin(ctx);
      if (method !== 'GET' && method !== 'HEAD') throw notAllowed('GET, HEAD, POST');
      return sendHtml(req, res, 200, loginPage(this.opts.auth, query.get('next')));
    }
    if (method !== 'GET' && method !== 'HEAD') throw notAllowed('GET, HEAD');
    const target = parsePagePath(path);
    if (!target) throw new ServeError(404, 'UNSUPPORTED', 'no such page');
    const viewer = await identifyViewer(req, this.opts.auth, this.sessions);
    this.opts.onIdentity?.(req, viewer.user);
    const visible = (name: string): boolean => mayPull(this.opts.auth, viewer, name);
    await this.index.fresh();
    const chrome: Chrome = { user: viewer.user, canLogin: this.opts.auth.mode !== 'none', here: req.url ?? '/' };
    if (target.kind === 'catalog') {
      const q = parseCatalogQuery(query);
      const result = this.index.query(q, visible);
      if (api) return sendJsonDoc(req, res, 200, catalogApi(result));
      const hint = viewer.user === '' && chrome.canLogin;
      return sendHtml(req, res, 200, page('Models', { ...chrome, ...(q.text ? { q: q.text } : {}) }, catalogBody(q, result, hint)));
    }
    const entry = visible(target.name) ? this.index.get(target.name) : undefined;
    if (!entry) return this.notFound(req, res, api, chrome, viewer);
    if (target.kind === 'repo') {
      if (api) return sendJsonDoc(req, res, 200, repoApi(entry));
      return sendHtml(req, res, 200, page(entry.name, chrome, repoBody(entry)));
    }
    const digest = target.ref.includes(':') ? target.ref : entry.tags.find((t) => t.tag === target.ref)?.digest;
    const d = digest === undefined ? undefined : await this.model(target.name, target.ref, digest);
    if (!d) return this.notFound(req, res, api, chrome, viewer);
    const format = d.metadata.find(([k]) => k === 'Format')?.[1] ?? entry.tags.find((t) => t.digest === digest)?.facts.format;
    const commands = pullCommands(this.host(req), target.name, target.ref, { ...d, ...(format ? { format } : {}) });
    if (api) return sendJsonDoc(req, res, 200, modelApi(d, commands));
    return sendHtml(req, res, 200, page(`${target.name}:${target.ref}`, chrome, modelBody(d, commands)));
  }

  private async model(name: string, ref: string, digest: string): Promise<ModelDetailsView | undefined> {
    const key = `${name}\0${this.index.generation(name)}\0${ref}\0${digest}`;
    const hit = this.details.get(key);
    if (hit) return hit;
    const d = await modelDetails(this.opts.store, name, ref, digest);
    if (d) this.details.set(key, d, Buffer.byteLength(JSON.stringify(d)) + (d.card?.html.length ?? 0));
    return d;
  }

  private notFound(req: IncomingMessage, res: ServerResponse, api: boolean, chrome: Chrome, viewer: Viewer): void {
    const message = 'There is no such model here, or you may not see it.';
    if (api) return sendJsonDoc(req, res, 404, { error: 'NOT_FOUND', message });
    sendHtml(req, res, 404, page('Not found', chrome, errorBody('Not found', message, viewer.user === '' && chrome.canLogin)));
  }

  /** The registry's host:port as the viewer reached it (for pull commands). */
  private host(req: IncomingMessage): string {
    const h = req.headers.host;
    return h && HOST_RE.test(h) ? h : this.opts.base().replace(/^https?:\/\//, '');
  }
}

function notAllowed(allow: string): ServeError {
  return new ServeError(405, 'UNSUPPORTED', 'this method is not allowed here', { allow });
}

export function sendHtml(req: IncomingMessage, res: ServerResponse, status: number, body: string, extra: Headers = {}): void {
  send(req, res, status, { ...DYNAMIC, 'content-type': 'text/html; charset=utf-8', ...extra }, body);
}

function sendJsonDoc(req: IncomingMessage, res: ServerResponse, status: number, doc: unknown, extra: Headers = {}): void {
  send(req, res, status, { ...DYNAMIC, 'content-type': 'application/json', ...extra }, JSON.stringify(doc));
}

