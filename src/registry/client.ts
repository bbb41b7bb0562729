/**
 * RegistryClient: one request to a registry host with auth, retries and redirects. Everything the
 * repository code sends goes through `request`, so auth and retry live in one place.
 * - 401: the challenge is answered once (Basic or a bearer token for the request's scopes), and
 *   the request is sent again if its body can be sent again. 401 and 403 are never retried beyond that.
 * - Network errors, 5xx and 429: retried with exponential backoff and jitter (Retry-After honoured,
 *   at most 30 s), for bodies that can be sent again.
 * - Redirects (GET/HEAD, e.g. to blob storage): followed, dropping Authorization on another host;
 *   only to http(s) URLs (a Location of file:///etc/passwd is an error naming it).
 */
import { PackError, hasErrorCode } from '../errors.js';
import { sleep } from '../internal/sleep.js';
import { Authorizer, type AuthorizerOptions } from './auth/authorizer.js';
import { SmallGetPool } from './pipelined-get.js';
import { discard, shortUrl, Transport, type Body, type HttpResponse, type TransportOptions } from './transport.js';

export interface ClientOptions extends TransportOptions, AuthorizerOptions {
  /** Attempts for a request that failed on the network, 5xx or 429 (default 5). */
  retries?: number;
  /** First backoff (ms, default 250); doubles per attempt, at most 10 s. */
  retryBaseMs?: number;
}

export interface RequestOptions {
  method: string;
  /** A path (`/v2/...`, with query) on the host, or an absolute URL (an upload Location). */
  path: string;
  headers?: Record<string, string>;
  body?: Body;
  /** Token scopes this request needs, e.g. `repository:models/x:pull,push`. */
  scopes: string[];
  signal?: AbortSignal | undefined;
  /** Statuses that are retried (default 5xx and 429). A HEAD of a blob never gets a 5xx for "absent". */
  noRetry?: boolean;
}

const MAX_REDIRECTS = 5;
const RETRY_STATUS = new Set([429, 500, 502, 503, 504]);

export class RegistryClient {
  readonly transport: Transport;
  readonly auth: Authorizer;
  private readonly retries: number;
  private readonly retryBaseMs: number;
  private readonly smallGetPools = new Map<string, SmallGetPool>();
  constructor(opts: ClientOptions = {}) {
    this.transport = new Transport(opts);
    this.auth = new Authorizer(this.transport, opts);
    this.retries = Math.max(1, opts.retries ?? 5);
    this.retryBaseMs = opts.retryBaseMs ?? 250;
  }

  /** `http://host` or `https://host`. */
  baseUrl(host: string): string {
    return this.transport.baseUrl(host);
  }

  async request(host: string, o: RequestOptions): Promise<HttpResponse> {
    const replayable = o.body === undefined || Buffer.isBuffer(o.body);
    const origin = new URL(this.baseUrl(host)).origin;
    let url = new URL(o.path, origin + '/');
    let authRounds = 0;
    let redirects = 0;
    for (let attempt = 1; ; attempt++) {
      // Credentials go only to the registry's own scheme, host and port: never to blob storage a
      // redirect points at, nor over http:// when a proxy's Location downgrades an https registry.
      const sameHost = url.origin === origin;
      const auth = sameHost ? await this.auth.header(host, o.scopes, o.signal ?? undefined) : undefined;
      const headers: Record<string, string> = { ...o.headers };
      if (auth) headers.authorization = auth;
      let res: HttpResponse;
      try {
        res = await this.transport.send({ method: o.method, url, headers, body: o.body, ...(o.signal ? { signal: o.signal } : {}) });
      } catch (e) {
        if (!replayable || o.noRetry || attempt >= this.retries || !hasErrorCode(e, 'NETWORK')) throw e;
        await this.backoff(attempt, undefined, o.signal ?? undefined);
        continue;
      }
      if (res.status === 401 && sameHost && authRounds < 2) {
        if (!replayable) {
          // A streamed body is gone: forget the token and let the caller start the transfer again.
          await discard(res);
          this.auth.forget(host, auth);
          const err = new PackError('UNAUTHORIZED', `${host}: credentials expired during the transfer`, { hint: 'run the command again' });
          throw Object.assign(err, { retryable: true }); // the caller can send the body again
        }
        const challenge = res.headers['www-authenticate'];
        await discard(res);
        await this.auth.onUnauthorized(host, challenge, o.scopes, auth, o.signal ?? undefined); // throws when there is nothing better to send
        authRounds++;
        attempt--; // answering a challenge is not a failed attempt
        continue;
      }
      if (RETRY_STATUS.has(res.status) && replayable && !o.noRetry && attempt < this.retries) {
        await discard(res);
        await this.backoff(attempt, res.headers['retry-after'], o.signal ?? undefined);
        continue;
      }
      if ((res.status === 307 || res.status === 302 || res.status === 301 || res.status === 303 || res.status === 308) && res.headers.location) {
        if (!(o.method === 'GET' || o.method === 'HEAD') || ++redirects > MAX_REDIRECTS) return res;
        await discard(res);
        const next = new URL(res.headers.location, url);
        if (next.protocol !== 'http:' && next.protocol !== 'https:') {
          // file:, ftp:, data: ... are never followed: a registry must not make mpk read local files.
          throw new PackError('REGISTRY', `${o.method} ${shortUrl(url)}: the registry redirected to ${shortUrl(next)}; only http and https redirects are followed`, {
            hint: 'nothing was read from there; the registry (or a proxy in front of it) is misconfigured or hostile',
          });
        }
        url = next;
        attempt--;
        continue;
      }
      if (res.status === 403 && sameHost) res.identity = await this.auth.identity(host, auth);
      return res;
    }
  }

  private async backoff(attempt: number, retryAfter: string | string[] | undefined, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw new PackError('ABORTED', 'interrupted');
    let ms = Math.min(10_000, this.retryBaseMs * 2 ** (attempt - 1));
    ms = ms / 2 + Math.random() * (ms / 2);
    const ra = Array.isArray(retryAfter) ? retryAfter[0] : retryAfter;
    if (ra) {
      const secs = Number(ra);
      const when = Number.isFinite(secs) ? secs * 1000 : Date.parse(ra) - Date.now();
      if (Number.isFinite(when) && when > 0) ms = Math.min(30_000, when);
    }
    await sleep(ms, signal);
  }

  /** The pipelined connections for small blob GETs to a host (plain HTTP; see pipelined-get.ts). */
  smallGets(host: string): SmallGetPool {
    let pool = this.smallGetPools.get(host);
    if (!pool) {
      pool = new SmallGetPool(new URL(this.baseUrl(host)), { stallMs: this.transport.stallMs });
      this.smallGetPools.set(host, pool);
    }
    return pool;
  }

  close(): void {
    for (const pool of this.smallGetPools.values()) pool.close();
    this.smallGetPools.clear();
    this.transport.close();
  }
}
