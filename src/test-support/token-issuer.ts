/**
 * A Docker token-protocol issuer for tests: the auth server that a registry in `auth: token`
 * mode sends clients to. It signs RS256 JWTs with a throwaway key whose self-signed certificate
 * goes both into the token's `x5c` header and into the registry's `rootcertbundle`.
 *
 *   GET  /token?service=S&scope=repository:NAME:pull,push[&scope=…][&account=U][&offline_token=true]
 *        optional `Authorization: Basic …`; without it the client is anonymous (user '').
 *   POST /token  (application/x-www-form-urlencoded)
 *        grant_type=password&username=U&password=P&service=S&scope=A B[&access_type=offline]
 *        grant_type=refresh_token&refresh_token=R&service=S&scope=…
 *
 * Answers {token, access_token, expires_in, issued_at[, refresh_token]}. Wrong credentials get
 * 401 with a JSON error body. Granted actions are the requested ones that `access` allows; only
 * `repository` scopes are granted (other resource types, e.g. registry:catalog:*, get nothing).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPrivateKey, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { runCommand } from './peers.js';

export interface TokenRequestRecord {
  /** `account` query or form parameter, as the client sent it. */
  account?: string;
  /** Every scope the client asked for (repeated `scope` params, space-separated ones split). */
  scopes: string[];
  service?: string;
  /** HTTP method: GET or POST. */
  method: string;
  /** The authenticated user (Basic auth, password grant or refresh token); absent when anonymous or refused. */
  user?: string;
  /** POST only: grant_type. */
  grantType?: string;
  /** HTTP status the issuer answered. */
  status?: number;
}

export interface TokenIssuer {
  /** http://127.0.0.1:PORT; the realm is `${url}/token`. */
  url: string;
  realm: string;
  service: string;
  issuer: string;
  requests: TokenRequestRecord[];
  tokensIssued: number;
  /** PEM of the self-signed certificate (what goes into the registry's rootcertbundle). */
  certPem: string;
  /** Signs a token directly, bypassing HTTP (e.g. to craft one that expired long ago). */
  mint(opts: MintOptions): string;
  stop(): Promise<void>;
}

export interface MintOptions {
  user: string;
  access: Array<{ type: string; name: string; actions: string[] }>;
  /** Seconds since the epoch used for iat/nbf; default now (plus the issuer's clock offset). */
  issuedAt?: number;
  ttlSeconds?: number;
  audience?: string;
}

export type AccessFn = (user: string, repository: string, requested: string[]) => string[];

export interface TokenIssuerOptions {
  users?: Record<string, string>;
  /** Default: every known user gets pull,push,delete on everything; anonymous ('') nothing. */
  access?: AccessFn;
  /** Lifetime of access tokens (expires_in); default 300. */
  tokenTtlSeconds?: number;
  /** Shifts the issuer's clock (iat, nbf, exp). docker-registry 2.8 allows 60 s of leeway on exp/nbf, so
   *  a token that must already be rejected needs e.g. clockOffsetSeconds: -120 with a short TTL. */
  clockOffsetSeconds?: number;
  /** `aud` claim / `service` name; default 'mpk-test-registry'. */
  service?: string;
  /** `iss` claim; default 'mpk-test-issuer'. */
  issuer?: string;
  /** Signing key and certificate (PEM); default: one made with the openssl CLI, shared per process. */
  keyPem?: string;
  certPem?: string;
}

export const DEFAULT_SERVICE = 'mpk-test-registry';
export const DEFAULT_ISSUER = 'mpk-test-issuer';

export const defaultAccess: AccessFn = (user) => (user === '' ? [] : ['pull', 'push', 'delete']);

let keyPairPromise: Promise<{ keyPem: string; certPem: string }> | undefined;

/**
 * An RSA 2048 key and a self-signed certificate (CN=mpk-test-issuer, 2 days), made once per
 * process with the openssl CLI. The certificate is both the token's leaf and the registry's root.
 */
export function testSigningKeyPair(): Promise<{ keyPem: string; certPem: string }> {
  keyPairPromise ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mpk-token-key-'));
    try {
      const key = join(dir, 'key.pem');
      const cert = join(dir, 'cert.pem');
      const r = await runCommand('openssl', [
        'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert,
        '-days', '2', '-subj', `/CN=${DEFAULT_ISSUER}`,
      ]);
      if (r.code !== 0) throw new Error(`openssl req -x509 failed (exit ${r.code}): ${r.stderr.trim()}`);
      return { keyPem: await readFile(key, 'utf8'), certPem: await readFile(cert, 'utf8') };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  })();
  keyPairPromise.catch(() => (keyPairPromise = undefined));
  return keyPairPromise;
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

/** Parses `type:name:a,b`; the name may itself contain ':' (e.g. a host:port prefix). */
export function parseScope(scope: string): { type: string; name: string; actions: string[] } | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last === first) return undefined;
  const actions = scope.slice(last + 1).split(',').filter((a) => a !== '');
  return { type: scope.slice(0, first), name: scope.slice(first + 1, last), actions };
}

function grant(allowed: string[], requested: string[]): string[] {
  const all = allowed.includes('*');
  const out: string[] = [];
  for (const a of requested) if ((all || allowed.includes(a)) && !out.includes(a)) out.push(a);
  return out;
}

function readBody(req: IncomingMessage, limit = 64 * 1024): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      parts.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

function parseBasic(header: string | undefined): { user: string; password: string } | undefined {
  if (!header) return undefined;
  const m = /^Basic\s+(\S+)\s*$/i.exec(header);
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i < 0) return undefined;
  return { user: decoded.slice(0, i), password: decoded.slice(i + 1) };
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Starts the issuer on 127.0.0.1:0. With `t`, it is stopped after the test. */
export async function startTokenIssuer(t: TestContext | null, opts: TokenIssuerOptions = {}): Promise<TokenIssuer> {
  const { keyPem, certPem } = opts.keyPem && opts.certPem ? { keyPem: opts.keyPem, certPem: opts.certPem } : await testSigningKeyPair();
  const key: KeyObject = createPrivateKey(keyPem);
  const certDer = new X509Certificate(certPem).raw;
  const users = opts.users ?? {};
  const access = opts.access ?? defaultAccess;
  const ttl = opts.tokenTtlSeconds ?? 300;
  const offset = opts.clockOffsetSeconds ?? 0;
  const service = opts.service ?? DEFAULT_SERVICE;
  const iss = opts.issuer ?? DEFAULT_ISSUER;
  const refreshTokens = new Map<string, string>(); // refresh token → user
  const header = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', x5c: [certDer.toString('base64')] }));
  const now = (): number => Math.floor(Date.now() / 1000) + offset;

  const mint = (m: MintOptions): string => {
    const iat = Math.floor(m.issuedAt ?? now());
    const claims = {
      iss,
      sub: m.user,
      aud: m.audience ?? service,
      exp: iat + Math.floor(m.ttlSeconds ?? ttl),
      nbf: iat,
      iat,
      jti: randomBytes(16).toString('hex'),
      access: m.access,
    };
    const input = `${header}.${b64url(JSON.stringify(claims))}`;
    // RS256: RSASSA-PKCS1-v1_5 with SHA-256 (node's default padding for RSA keys).
    return `${input}.${sign('sha256', Buffer.from(input), key).toString('base64url')}`;
  };

  const issue = (res: ServerResponse, user: string, scopes: string[], refresh: boolean, reuseRefresh?: string): void => {
    const acc: Array<{ type: string; name: string; actions: string[] }> = [];
    for (const s of scopes) {
      const p = parseScope(s);
      if (!p || p.type !== 'repository') continue;
      const granted = grant(access(user, p.name, p.actions), p.actions);
      const prev = acc.find((a) => a.type === p.type && a.name === p.name);
      if (prev) prev.actions = grant([...prev.actions, ...granted], [...prev.actions, ...p.actions]);
      else acc.push({ type: p.type, name: p.name, actions: granted });
    }
    const iat = now();
    const token = mint({ user, access: acc, issuedAt: iat });
    issuer.tokensIssued++;
    const body: Record<string, unknown> = {
      token,
      access_token: token,
      expires_in: ttl,
      issued_at: new Date(iat * 1000).toISOString(),
    };
    if (reuseRefresh) body.refresh_token = reuseRefresh;
    else if (refresh && user !== '') {
      const r = randomBytes(24).toString('base64url');
      refreshTokens.set(r, user);
      body.refresh_token = r;
    }
    sendJson(res, 200, body);
  };

  const unauthorized = (res: ServerResponse, rec: TokenRequestRecord, message: string): void => {
    rec.status = 401;
    sendJson(
      res,
      401,
      { errors: [{ code: 'UNAUTHORIZED', message, detail: null }], error: 'invalid_grant', error_description: message },
      { 'www-authenticate': `Basic realm="${iss}"` },
    );
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://issuer.invalid');
    const method = req.method ?? 'GET';
    if (url.pathname !== '/token' || (method !== 'GET' && method !== 'POST')) {
      req.resume();
      sendJson(res, 404, { error: 'not_found' });
      return;
    }
    const splitScopes = (list: string[]): string[] => list.flatMap((s) => s.split(' ')).filter((s) => s !== '');
    if (method === 'GET') {
      req.resume();
      const q = url.searchParams;
      const rec: TokenRequestRecord = { scopes: splitScopes(q.getAll('scope')), method };
      if (q.has('account')) rec.account = q.get('account')!;
      if (q.has('service')) rec.service = q.get('service')!;
      issuer.requests.push(rec);
      let user = '';
      if (req.headers.authorization !== undefined) {
        const basic = parseBasic(req.headers.authorization);
        if (!basic || users[basic.user] === undefined || users[basic.user] !== basic.password) {
          unauthorized(res, rec, 'invalid username or password');
          return;
        }
        user = basic.user;
        rec.user = user;
      }
      rec.status = 200;
      issue(res, user, rec.scopes, q.get('offline_token') === 'true');
      return;
    }
    const form = new URLSearchParams(await readBody(req));
    const grantType = form.get('grant_type') ?? '';
    const rec: TokenRequestRecord = { scopes: splitScopes(form.getAll('scope')), method, grantType };
    if (form.has('account')) rec.account = form.get('account')!;
    if (form.has('service')) rec.service = form.get('service')!;
    issuer.requests.push(rec);
    if (grantType === 'password') {
      const user = form.get('username') ?? '';
      if (users[user] === undefined || users[user] !== (form.get('password') ?? '')) {
        unauthorized(res, rec, 'invalid username or password');
        return;
      }
      rec.user = user;
      rec.status = 200;
      issue(res, user, rec.scopes, form.get('access_type') === 'offline');
      return;
    }
    if (grantType === 'refresh_token') {
      const r = form.get('refresh_token') ?? '';
      const user = refreshTokens.get(r);
      if (user === undefined) {
        unauthorized(res, rec, 'unknown refresh token');
        return;
      }
      rec.user = user;
      rec.status = 200;
      issue(res, user, rec.scopes, false, r);
      return;
    }
    rec.status = 400;
    sendJson(res, 400, { error: 'unsupported_grant_type', error_description: `grant_type ${JSON.stringify(grantType)}` });
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: 'server_error', error_description: String(err) });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  let stopped: Promise<void> | undefined;
  const issuer: TokenIssuer = {
    url: `http://127.0.0.1:${port}`,
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer: iss,
    requests: [],
    tokensIssued: 0,
    certPem,
    mint,
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return stopped;
    },
  };
  t?.after(() => issuer.stop());
  return issuer;
}
