/**
 * Authentication and authorization of /v2/ requests, in one of three modes:
 *   none   open: every request may do everything (only on a loopback address unless told otherwise)
 *   basic  htpasswd (bcrypt): every signed-in user may pull, push and delete; others get 401
 *   token  bearer tokens from /token (token.ts) carrying per-repository actions
 * In token mode a token that lacks an action gets 401 `insufficient_scope` when the rules would
 * grant it (the client fetches a wider token), and 403 DENIED when they would not.
 */
import type { IncomingMessage } from 'node:http';
import { PasswordChecker, parseBasic, signInRefused, type Action } from './access.js';
import { ServeError } from './errors.js';
import type { Claims, TokenService } from './token.js';

export type AuthConfig =
  | { mode: 'none' }
  | { mode: 'basic'; passwords: PasswordChecker; realm?: string }
  | { mode: 'token'; tokens: TokenService };

export interface Identity {
  /** '' for anonymous. */
  user: string;
  claims?: Claims;
}

export type Need = { kind: 'base' } | { kind: 'catalog' } | { kind: 'repo'; name: string; actions: Action[] };

const HOST_RE = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

export class Auth {
  constructor(
    readonly config: AuthConfig,
    /** scheme://host:port of the server as it listens, for a request without a usable Host. */
    private readonly fallbackBase: () => string,
  ) {}

  get mode(): AuthConfig['mode'] {
    return this.config.mode;
  }

  /** Who sent the request. Bad credentials are a 401 at once; none make an anonymous identity. */
  async identify(req: IncomingMessage): Promise<Identity> {
    const header = req.headers.authorization;
    const c = this.config;
    if (c.mode === 'none' || header === undefined) return { user: '' };
    if (c.mode === 'basic') {
      const basic = parseBasic(header);
      let ok = false;
      try {
        ok = !!basic && basic.user !== '' && (await c.passwords.check(basic.user, basic.password, req.socket.remoteAddress ?? ''));
      } catch (e) {
        throw signInRefused(e) ?? e;
      }
      if (!ok) throw new ServeError(401, 'UNAUTHORIZED', 'user name or password refused', this.challenge(req));
      return { user: basic!.user };
    }
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    const claims = m ? c.tokens.verify(m[1]!) : undefined;
    if (!claims) throw new ServeError(401, 'UNAUTHORIZED', 'the token is invalid or expired', this.challenge(req, undefined, 'invalid_token'));
    return { user: claims.sub, claims };
  }

  /** Throws 401 (with a challenge) or 403 unless `who` may do what `need` says. */
  authorize(req: IncomingMessage, who: Identity, need: Need): void {
    const c = this.config;
    if (c.mode === 'none') return;
    if (c.mode === 'basic') {
      if (who.user === '') throw new ServeError(401, 'UNAUTHORIZED', 'authentication required', this.challenge(req));
      return;
    }
    const scope = need.kind === 'repo' ? `repository:${need.name}:${need.actions.join(',')}` : need.kind === 'catalog' ? 'registry:catalog:*' : undefined;
    if (!who.claims) throw new ServeError(401, 'UNAUTHORIZED', 'authentication required', this.challenge(req, scope));
    if (need.kind === 'base') return;
    if (need.kind === 'catalog') {
      if (who.claims.access.some((g) => g.type === 'registry' && g.name === 'catalog')) return;
      throw new ServeError(401, 'UNAUTHORIZED', 'the token does not allow listing repositories', this.challenge(req, scope, 'insufficient_scope'));
    }
    const missing = need.actions.filter((a) => !tokenAllows(who.claims!, need.name, a));
    if (missing.length === 0) return;
    if (c.tokens.policy.granted(who.user, need.name, missing).length === missing.length) {
      throw new ServeError(401, 'UNAUTHORIZED', `the token does not allow ${missing.join(',')} on ${need.name}`, this.challenge(req, scope, 'insufficient_scope'));
    }
    throw new ServeError(403, 'DENIED', { name: need.name, actions: missing, user: who.user || '(anonymous)' });
  }

  /** May `who` read `name`? (Mount sources, catalog entries.) */
  canPull(who: Identity, name: string): boolean {
    const c = this.config;
    if (c.mode === 'none') return true;
    if (c.mode === 'basic') return who.user !== '';
    if (!who.claims) return false;
    return tokenAllows(who.claims, name, 'pull') || c.tokens.policy.allows(who.user, name, 'pull');
  }

  challenge(req: IncomingMessage, scope?: string, error?: string): Record<string, string> {
    const c = this.config;
    if (c.mode === 'basic') return { 'www-authenticate': `Basic realm="${c.realm ?? 'mpk-serve'}"` };
    if (c.mode !== 'token') return {};
    const host = req.headers.host;
    const secure = !!(req.socket as { encrypted?: boolean }).encrypted;
    const base = host && HOST_RE.test(host) ? `${secure ? 'https' : 'http'}://${host}` : this.fallbackBase();
    let v = `Bearer realm="${base}/token",service="${c.tokens.service}"`;
    if (scope) v += `,scope="${scope}"`;
    if (error) v += `,error="${error}"`;
    return { 'www-authenticate': v };
  }
}

function tokenAllows(claims: Claims, name: string, action: Action): boolean {
  return claims.access.some((g) => g.type === 'repository' && g.name === name && (g.actions.includes(action) || g.actions.includes('*')));
}
