/**
 * Who is looking at the catalog, and what they may see. A viewer is identified by, in order:
 * an `Authorization` header (Basic with a registry user's password, or, with --token-users, a
 * Bearer token from /token), else the session cookie a login made, else anonymous. They see a
 * repository exactly when they may pull it: everyone on an open registry; signed-in users with
 * --htpasswd; with --token-users what the access rules (or the token) grant that account, anonymous
 * viewers what they grant account "" (a rule for account "*" covers every signed-in user).
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { PasswordChecker, parseBasic, signInRefused } from '../access.js';
import type { Auth } from '../auth.js';
import { ServeError } from '../errors.js';
import { Lru } from '../lru.js';
import type { Claims } from '../token.js';

export const SESSION_COOKIE = 'mpk_session';
/** A login lasts this long (12 h), then the viewer signs in again. */
export const SESSION_TTL_MS = 12 * 3600_000;
const MAX_SESSIONS = 10_000;

export interface Viewer {
  /** '' for anonymous. */
  user: string;
  claims?: Claims;
  /** The session id when identified by the cookie (logout removes it). */
  session?: string;
}

/** Sessions in memory: a restart signs everyone out (as the token service's secret does). */
export class Sessions {
  private readonly map = new Lru<string, { user: string; until: number }>(MAX_SESSIONS);

  create(user: string, now = Date.now()): string {
    const id = randomBytes(32).toString('base64url');
    this.map.set(id, { user, until: now + SESSION_TTL_MS });
    return id;
  }

  user(id: string, now = Date.now()): string | undefined {
    const s = this.map.get(id);
    if (!s) return undefined;
    if (s.until <= now) {
      this.map.delete(id);
      return undefined;
    }
    return s.user;
  }

  remove(id: string): void {
    this.map.delete(id);
  }
}

/** The password checker of the registry's auth mode (undefined on an open registry). */
export function passwordsOf(auth: Auth): PasswordChecker | undefined {
  const c = auth.config;
  return c.mode === 'basic' ? c.passwords : c.mode === 'token' ? c.tokens.passwords : undefined;
}

/** Checks a password (throttled as every sign-in is); a refusal to check at all is a 429. */
export async function checkPassword(auth: Auth, user: string, password: string, client: string): Promise<boolean> {
  const checker = passwordsOf(auth);
  if (!checker || user === '') return false;
  try {
    return await checker.check(user, password, client);
  } catch (e) {
    throw signInRefused(e) ?? e;
  }
}

export function cookieValue(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header || header.length > 8192) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Who sent `req`. Bad credentials in a header are a 401; an unknown or expired cookie is anonymous. */
export async function identifyViewer(req: IncomingMessage, auth: Auth, sessions: Sessions): Promise<Viewer> {
  if (auth.mode === 'none') return { user: '' };
  const header = req.headers.authorization;
  if (header !== undefined) {
    const basic = parseBasic(header);
    if (basic) {
      if (await checkPassword(auth, basic.user, basic.password, req.socket.remoteAddress ?? '')) return { user: basic.user };
      throw new ServeError(401, 'UNAUTHORIZED', 'user name or password refused');
    }
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    const claims = m && auth.config.mode === 'token' ? auth.config.tokens.verify(m[1]!) : undefined;
    if (!claims) throw new ServeError(401, 'UNAUTHORIZED', 'the token is invalid or expired');
    return { user: claims.sub, claims };
  }
  const id = cookieValue(req, SESSION_COOKIE);
  const user = id && /^[A-Za-z0-9_-]{43}$/.test(id) ? sessions.user(id) : undefined;
  return user === undefined ? { user: '' } : { user, session: id! };
}

/** May `viewer` see (pull) repository `name`? */
export function mayPull(auth: Auth, viewer: Viewer, name: string): boolean {
  const c = auth.config;
  if (c.mode === 'none') return true;
  if (c.mode === 'basic') return viewer.user !== '';
  if (viewer.claims && auth.canPull({ user: viewer.user, claims: viewer.claims }, name)) return true;
  // As the registry decides a pull: the rules for this account ('' = anonymous), as a token would carry them.
  return c.tokens.policy.allows(viewer.user, name, 'pull');
}
