/**
 * Registry auth: anonymous, Basic, and the bearer-token flow. After a 401 the challenge says which
 * scheme a host uses; from then on every request to that host gets its Authorization up front (a
 * cached token per host and scope set, refreshed before it expires), so the challenge round trip
 * is paid once per host, not once per request.
 * Reference: https://distribution.github.io/distribution/spec/auth/token/
 * Reference: https://distribution.github.io/distribution/spec/auth/oauth/
 */
import { PackError, isTransient } from '../../errors.js';
import { sleep } from '../../internal/sleep.js';
import { readBody, type Transport } from '../transport.js';
import { mergeScopes, parseChallenges, type Challenge } from './challenge.js';
import { deniedError } from '../errcode.js';
import type { Credential, CredentialStore } from './credentials.js';

interface CachedToken {
  header: string;
  /** ms since epoch after which the token is not used any more. */
  expiresAt: number;
}

/** Tokens without `expires_in` live 60 s (the token spec's default). */
const DEFAULT_TOKEN_TTL_S = 60;
const MAX_TOKEN_BYTES = 1024 * 1024;

export interface AuthorizerOptions {
  /** Where saved logins come from (docker's config.json and credential helpers). */
  credentials?: CredentialStore;
  /** Credentials given on the command line or by a library caller; win over the store. */
  credential?: Credential;
  /** Only for these hosts does `credential` apply (default: every host). */
  credentialHosts?: string[];
}

export class Authorizer {
  private readonly challenges = new Map<string, Challenge>();
  private readonly tokens = new Map<string, CachedToken>();
  private readonly inflight = new Map<string, Promise<CachedToken>>();
  private readonly creds = new Map<string, Promise<Credential | undefined>>();

  constructor(
    private readonly transport: Transport,
    private readonly opts: AuthorizerOptions = {},
  ) {}

  /** The Authorization header to send to host for these scopes, if the host is known to want one. */
  async header(host: string, scopes: string[], signal?: AbortSignal): Promise<string | undefined> {
    const ch = this.challenges.get(host);
    if (!ch) return undefined;
    if (ch.scheme === 'basic') return this.basicHeader(host);
    if (ch.scheme !== 'bearer') return undefined;
    return (await this.token(host, ch, scopes, signal)).header;
  }

  /**
   * Called after a 401: records the challenge and returns the header to retry with. Throws
   * UNAUTHORIZED when there is nothing better to send (no credentials, or they were refused).
   */
  async onUnauthorized(host: string, wwwAuthenticate: string | string[] | undefined, scopes: string[], sent: string | undefined, signal?: AbortSignal): Promise<string> {
    const all = parseChallenges(wwwAuthenticate);
    const ch = all.find((c) => c.scheme === 'bearer') ?? all.find((c) => c.scheme === 'basic');
    if (!ch) {
      throw new PackError('UNAUTHORIZED', `${host}: the registry refused the request (401) without a usable challenge`, { hint: `log in with: mpk login ${host}` });
    }
    this.challenges.set(host, ch);
    if (ch.scheme === 'basic') {
      const header = await this.basicHeader(host);
      if (!header || header === sent) throw await this.refused(host);
      return header;
    }
    // Bearer: the challenge may name a scope we did not ask for (and `error="insufficient_scope"`).
    const want = mergeScopes([...scopes, ...(ch.params.scope ? ch.params.scope.split(' ') : [])]);
    if (sent && ch.params.error === 'insufficient_scope' && want.join(' ') === mergeScopes(scopes).join(' ')) {
      if (!(await this.credential(host))) throw await this.refused(host); // anonymous: logging in may help
      // We sent a token for exactly what the registry asks for, and it says that is not enough:
      // the token service granted less than asked. Another token will not change that.
      throw deniedError(host, host, await this.identity(host, sent), scopeWords(want), 'insufficient scope');
    }
    const key = this.key(host, want);
    const cached = this.tokens.get(key);
    if (cached && cached.header === sent) this.tokens.delete(key); // expired or revoked: fetch anew
    const tok = await this.token(host, ch, want, signal);
    if (tok.header === sent) {
      if (ch.params.error === 'insufficient_scope') throw deniedError(host, host, await this.identity(host, sent), scopeWords(want), 'insufficient scope');
      throw await this.refused(host);
    }
    return tok.header;
  }

  /** Forgets a token the registry refused mid-transfer, so the next request fetches a new one. */
  forget(host: string, header: string | undefined): void {
    for (const [k, t] of this.tokens) if (k.startsWith(`${host} `) && t.header === header) this.tokens.delete(k);
  }

  /**
   * Who a request with this Authorization speaks for, for messages: `user "bob"`, the saved
   * identity token, or `anonymous` (nothing sent, or a token fetched without credentials).
   */
  async identity(host: string, sent: string | undefined): Promise<string> {
    const c = sent ? await this.credential(host) : undefined;
    return c?.username ? `user ${JSON.stringify(c.username)}` : c?.identityToken ? 'the saved identity token' : 'anonymous';
  }

  /**
   * The registry (or its token service) said 401 to what we sent. With no credentials, logging in
   * helps. Credentials given by the caller (`mpk login` itself) were refused: check them, not "log
   * in" again. Saved ones were refused: the saved login is stale, log in again.
   */
  private async refused(host: string): Promise<PackError> {
    const c = await this.credential(host);
    if (!c || (!c.username && !c.identityToken)) {
      return new PackError('UNAUTHORIZED', `${host}: authentication required`, { hint: `log in with: mpk login ${host} -u USER` });
    }
    const who = c.username ? `user ${JSON.stringify(c.username)}` : 'the identity token';
    if (this.explicit(host)) {
      return new PackError('UNAUTHORIZED', `${host}: the registry refused the credentials given (${who}${c.username ? ' with this password' : ''})`, {
        hint: 'check the user name and password (some registries want an access token instead of the password), then run the command again',
      });
    }
    return new PackError('UNAUTHORIZED', `${host}: the registry refused the saved login (${who}): wrong or expired password`, {
      hint: `save the current one with: mpk login ${host}${c.username ? ` -u ${c.username}` : ''} (or mpk logout ${host} to go on anonymously)`,
    });
  }

  /** True when the caller gave the credential for this host (not read from docker's config). */
  private explicit(host: string): boolean {
    return !!this.opts.credential && (!this.opts.credentialHosts || this.opts.credentialHosts.includes(host));
  }

  private key(host: string, scopes: string[]): string {
    return `${host} ${scopes.join(' ')}`;
  }

  private credential(host: string): Promise<Credential | undefined> {
    let p = this.creds.get(host);
    if (!p) {
      p = this.explicit(host) ? Promise.resolve(this.opts.credential) : (this.opts.credentials?.get(host) ?? Promise.resolve(undefined));
      this.creds.set(host, p);
    }
    return p;
  }

  private async basicHeader(host: string): Promise<string | undefined> {
    const c = await this.credential(host);
    if (!c?.username || c.password === undefined) return undefined;
    return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
  }

  private async token(host: string, ch: Challenge, scopes: string[], signal?: AbortSignal): Promise<CachedToken> {
    const want = mergeScopes(scopes);
    const key = this.key(host, want);
    const hit = this.tokens.get(key);
    if (hit && hit.expiresAt > Date.now()) return hit;
    let p = this.inflight.get(key);
    if (!p) {
      p = this.fetchToken(host, ch, want, signal).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    const tok = await p;
    this.tokens.set(key, tok);
    return tok;
  }

  private async fetchToken(host: string, ch: Challenge, scopes: string[], signal?: AbortSignal): Promise<CachedToken> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.fetchTokenOnce(host, ch, scopes, signal);
      } catch (e) {
        if (!isTransient(e) || attempt >= 4 || signal?.aborted) throw e;
        await sleep(250 * 2 ** (attempt - 1), signal);
      }
    }
  }

  private async fetchTokenOnce(host: string, ch: Challenge, scopes: string[], signal?: AbortSignal): Promise<CachedToken> {
    const realm = ch.params.realm;
    if (!realm) throw new PackError('REGISTRY', `${host}: bearer challenge without a realm`, { hint: 'the registry is misconfigured' });
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new PackError('REGISTRY', `${host}: bearer realm ${JSON.stringify(realm)} is not a URL`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new PackError('REGISTRY', `${host}: bearer realm ${realm} is not http(s)`);
    const c = await this.credential(host);
    if (url.protocol === 'http:' && this.transport.baseUrl(host).startsWith('https:') && c) {
      // Never send a password in clear text because a challenge asked for it.
      throw new PackError('REGISTRY', `${host}: the token service ${url.origin} is plain http; not sending credentials to it`, {
        hint: 'the registry is misconfigured (its auth realm should be https)',
      });
    }
    const service = ch.params.service;
    let res;
    if (c?.identityToken) {
      // OAuth2 refresh-token grant (what `docker login` stores as identitytoken).
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: c.identityToken, client_id: 'mpk' });
      if (service) form.set('service', service);
      if (scopes.length) form.set('scope', scopes.join(' '));
      res = await this.transport.send({
        method: 'POST',
        url,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: Buffer.from(form.toString()),
        ...(signal ? { signal } : {}),
      });
    } else {
      if (service) url.searchParams.set('service', service);
      for (const s of scopes) url.searchParams.append('scope', s);
      const headers: Record<string, string> = {};
      if (c?.username && c.password !== undefined) {
        url.searchParams.set('account', c.username);
        headers.authorization = `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
      }
      res = await this.transport.send({ method: 'GET', url, headers, ...(signal ? { signal } : {}) });
    }
    const body = await readBody(res, MAX_TOKEN_BYTES);
    if (res.status === 401 || res.status === 403) throw await this.refused(host);
    if (res.status !== 200) {
      const err = new PackError('REGISTRY', `${host}: token service ${url.host} answered HTTP ${res.status}`, { hint: 'run the command again later' });
      throw Object.assign(err, { status: res.status });
    }
    let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
    try {
      doc = JSON.parse(body.toString('utf8'));
    } catch {
      throw new PackError('REGISTRY', `${host}: token service ${url.host} did not answer JSON`);
    }
    const token = typeof doc.token === 'string' && doc.token ? doc.token : typeof doc.access_token === 'string' ? doc.access_token : '';
    if (!token) throw new PackError('REGISTRY', `${host}: token service ${url.host} answered without a token`);
    const ttl = typeof doc.expires_in === 'number' && doc.expires_in > 0 ? doc.expires_in : DEFAULT_TOKEN_TTL_S;
    // Renew a little early (10% of the lifetime, at most 30 s) so a request never carries a token
    // that expires on the way; a 401 mid-transfer is still handled by asking again.
    const margin = Math.min(30_000, ttl * 100);
    return { header: `Bearer ${token}`, expiresAt: Date.now() + ttl * 1000 - margin };
  }
}

/** `repository:team/m:pull,push` → `pull,push on team/m` (other scope kinds as they are). */
function scopeWords(scopes: string[]): string {
  return scopes
    .map((sc) => {
      const m = /^repository:(.+):([a-z*,]+)$/.exec(sc);
      return m ? `${m[2]} on ${m[1]}` : sc;
    })
    .join('; ');
}
