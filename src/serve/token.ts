/**
 * The token service of `mpk serve --token-users`: docker's token protocol, served by the registry
 * itself at /token, so docker-style clients (docker, skopeo, oras, mpk) work unchanged.
 *
 *   GET  /token?service=S&scope=repository:NAME:pull,push[&scope=…]   (Basic auth optional)
 *   POST /token   grant_type=password&username=U&password=P&service=S&scope=A B
 *
 * Tokens are JWTs signed with HS256 under a random secret made at each start: issuer and verifier
 * are the same process, so nothing needs a key pair, and a restart simply makes clients ask again
 * (they do on the next 401). They live `ttlSeconds` (default 300) and carry, per repository, the
 * requested actions that the access rules grant.
 * Reference: https://distribution.github.io/distribution/spec/auth/token/
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AccessPolicy, PasswordChecker, ACTIONS, parseBasic, signInRefused, type Action } from './access.js';
import { ServeError } from './errors.js';
import { readBody, sendJson } from './http-util.js';
import { isValidName } from './router.js';

export interface Grant {
  type: string;
  name: string;
  actions: string[];
}

export interface Claims {
  iss: string;
  sub: string;
  aud: string;
  exp: number;
  nbf: number;
  iat: number;
  jti: string;
  access: Grant[];
}

export interface TokenServiceOptions {
  passwords: PasswordChecker;
  policy: AccessPolicy;
  ttlSeconds?: number;
  service?: string;
  /** HMAC key; default 32 random bytes. */
  secret?: Buffer;
}

const ISSUER = 'mpk-serve';
const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64url');
const HEADER = b64(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
const MAX_SCOPES = 64;

export class TokenService {
  readonly service: string;
  readonly ttlSeconds: number;
  readonly policy: AccessPolicy;
  private readonly secret: Buffer;
  readonly passwords: PasswordChecker;

  constructor(opts: TokenServiceOptions) {
    this.service = opts.service ?? 'mpk-serve';
    this.ttlSeconds = opts.ttlSeconds ?? 300;
    this.secret = opts.secret ?? randomBytes(32);
    this.passwords = opts.passwords;
    this.policy = opts.policy;
  }

  mint(user: string, access: Grant[], now = Math.floor(Date.now() / 1000)): string {
    const claims: Claims = { iss: ISSUER, sub: user, aud: this.service, exp: now + this.ttlSeconds, nbf: now, iat: now, jti: randomBytes(12).toString('hex'), access };
    const input = `${HEADER}.${b64(JSON.stringify(claims))}`;
    return `${input}.${this.sign(input)}`;
  }

  /** The claims of a token this service signed and that is valid now; undefined otherwise. */
  verify(token: string, now = Math.floor(Date.now() / 1000)): Claims | undefined {
    const parts = token.split('.');
    if (parts.length !== 3 || parts[0] !== HEADER) return undefined;
    const want = Buffer.from(this.sign(`${parts[0]}.${parts[1]}`));
    const got = Buffer.from(parts[2]!);
    if (want.length !== got.length || !timingSafeEqual(want, got)) return undefined;
    let c: Claims;
    try {
      c = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as Claims;
    } catch {
      return undefined;
    }
    if (c.iss !== ISSUER || c.aud !== this.service || typeof c.exp !== 'number' || c.exp <= now || c.nbf > now + 5 || !Array.isArray(c.access)) return undefined;
    return c;
  }

  private sign(input: string): string {
    return createHmac('sha256', this.secret).update(input).digest('base64url');
  }

  /** What `user` ('' = anonymous) gets for the scopes asked. Unknown scope types get nothing. */
  grants(user: string, scopes: string[]): Grant[] {
    const out: Grant[] = [];
    for (const scope of scopes.slice(0, MAX_SCOPES)) {
      const first = scope.indexOf(':');
      const last = scope.lastIndexOf(':');
      if (first < 0 || last === first) continue;
      const type = scope.slice(0, first);
      const name = scope.slice(first + 1, last);
      const wanted = scope.slice(last + 1).split(',');
      if (type === 'registry' && name === 'catalog') {
        out.push({ type, name, actions: ['*'] }); // the listing itself is filtered by pull access
        continue;
      }
      if (type !== 'repository' || !isValidName(name)) continue;
      const granted = this.policy.granted(user, name, wanted.filter((a): a is Action => ACTIONS.includes(a as Action)));
      const prev = out.find((g) => g.type === type && g.name === name);
      if (prev) prev.actions = [...new Set([...prev.actions, ...granted])];
      else out.push({ type, name, actions: granted });
    }
    return out;
  }

  /** GET or POST /token. */
  async handle(req: IncomingMessage, res: ServerResponse, query: URLSearchParams): Promise<void> {
    let user = '';
    let scopes: string[];
    if (req.method === 'POST') {
      const form = new URLSearchParams((await readBody(req, 64 * 1024, 'SIZE_INVALID')).toString('utf8'));
      scopes = split(form.getAll('scope'));
      const grant = form.get('grant_type');
      if (grant !== 'password') {
        sendJson(req, res, 400, { error: 'unsupported_grant_type', error_description: 'only grant_type=password is supported' });
        return;
      }
      user = await this.login(form.get('username') ?? '', form.get('password') ?? '', req.socket.remoteAddress ?? '');
    } else if (req.method === 'GET') {
      scopes = split(query.getAll('scope'));
      const basic = parseBasic(req.headers.authorization);
      if (req.headers.authorization !== undefined && !basic) throw refused();
      if (basic) user = await this.login(basic.user, basic.password, req.socket.remoteAddress ?? '');
    } else {
      throw new ServeError(405, 'UNSUPPORTED', 'the token endpoint takes GET or POST', { allow: 'GET, POST' });
    }
    const now = Math.floor(Date.now() / 1000);
    const token = this.mint(user, this.grants(user, scopes), now);
    sendJson(req, res, 200, { token, access_token: token, expires_in: this.ttlSeconds, issued_at: new Date(now * 1000).toISOString() }, { 'cache-control': 'no-store' });
  }

  private async login(user: string, password: string, client: string): Promise<string> {
    try {
      if (user !== '' && (await this.passwords.check(user, password, client))) return user;
    } catch (e) {
      throw signInRefused(e) ?? e;
    }
    throw refused();
  }
}

function refused(): ServeError {
  return new ServeError(401, 'UNAUTHORIZED', 'user name or password refused', { 'www-authenticate': 'Basic realm="mpk-serve"' });
}

function split(values: string[]): string[] {
  return values.flatMap((v) => v.split(' ')).filter((s) => s !== '');
}
