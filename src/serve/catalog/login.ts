/**
 * Sign-in and sign-out for the pages. A POST must come from this site's own pages: its Origin
 * header must name this server (with SameSite=Strict on the cookie, that closes CSRF). The
 * password is checked by the registry's own checker, so the login throttle applies. A success
 * sets the session cookie (HttpOnly, SameSite=Strict, Secure under TLS) and goes on to `next`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Auth } from '../auth.js';
import { ServeError } from '../errors.js';
import { readBody, send, type Headers } from '../http-util.js';
import { page } from './layout.js';
import { loginBody } from './page-model.js';
import { safeNext } from './paths.js';
import { SESSION_COOKIE, SESSION_TTL_MS, checkPassword, cookieValue, type Sessions } from './viewer.js';

export interface LoginCtx {
  req: IncomingMessage;
  res: ServerResponse;
  auth: Auth;
  sessions: Sessions;
  headers: Headers;
}

const HOST_RE = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

function secure(req: IncomingMessage): boolean {
  return !!(req.socket as { encrypted?: boolean }).encrypted;
}

/** Refuses a POST whose Origin is missing or is not this server as the browser reached it. */
export function checkOrigin(req: IncomingMessage): void {
  const origin = req.headers.origin;
  const host = req.headers.host;
  const own = host && HOST_RE.test(host) ? `${secure(req) ? 'https' : 'http'}://${host}`.toLowerCase() : undefined;
  if (!origin || !own || origin.toLowerCase() !== own) throw new ServeError(403, 'DENIED', 'this form may only be sent from the catalog’s own pages');
}

export function loginPage(auth: Auth, next: string | null, error?: string, user = ''): string {
  const body = auth.mode === 'none' ? loginBody(safeNext(next), 'This registry is open: there is nothing to sign in to.') : loginBody(safeNext(next), error);
  return page('Sign in', { user, canLogin: false, here: '/' }, body);
}

function redirect(ctx: LoginCtx, to: string, cookie?: string): void {
  send(ctx.req, ctx.res, 303, { ...ctx.headers, location: to, ...(cookie ? { 'set-cookie': cookie } : {}) });
}

export async function handleLogin(ctx: LoginCtx): Promise<void> {
  checkOrigin(ctx.req);
  const form = new URLSearchParams((await readBody(ctx.req, 8 * 1024, 'SIZE_INVALID')).toString('utf8'));
  const next = safeNext(form.get('next'));
  if (ctx.auth.mode === 'none') return redirect(ctx, next);
  const user = form.get('user') ?? '';
  const ok = await checkPassword(ctx.auth, user, form.get('password') ?? '', ctx.req.socket.remoteAddress ?? '');
  if (!ok) {
    send(ctx.req, ctx.res, 401, { ...ctx.headers, 'content-type': 'text/html; charset=utf-8' }, loginPage(ctx.auth, next, 'User name or password refused.'));
    return;
  }
  const old = cookieValue(ctx.req, SESSION_COOKIE);
  if (old) ctx.sessions.remove(old);
  const id = ctx.sessions.create(user);
  redirect(ctx, next, `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${SESSION_TTL_MS / 1000}${secure(ctx.req) ? '; Secure' : ''}`);
}

export async function handleLogout(ctx: LoginCtx): Promise<void> {
  checkOrigin(ctx.req);
  const id = cookieValue(ctx.req, SESSION_COOKIE);
  if (id) ctx.sessions.remove(id);
  redirect(ctx, '/', `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${secure(ctx.req) ? '; Secure' : ''}`);
}
