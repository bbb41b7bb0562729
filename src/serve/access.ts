/**
 * Who may do what: users with bcrypt password hashes (an htpasswd file, `htpasswd -B`), and for
 * token mode a users-and-access file (JSON) with rules per repository pattern:
 *
 *   {
 *     "users":  { "alice": "$2y$05$…", "bob": "$2y$05$…" },      // or "htpasswd": "users.htpasswd"
 *     "access": [
 *       { "account": "alice", "name": "*",        "actions": ["pull", "push", "delete"] },
 *       { "account": "bob",   "name": "team/*",   "actions": ["pull"] },
 *       { "account": "*",     "name": "shared/*", "actions": ["pull", "push"] },   // any signed-in user
 *       { "account": "",      "name": "public/*", "actions": ["pull"] }            // anonymous
 *     ]
 *   }
 *
 * In a name pattern `*` matches any characters, `/` included. Rules add up; nothing is granted
 * that no rule names. Passwords are checked with bcryptjs (2a/2b/2y); a success is remembered
 * for a few minutes by a hash of the credentials, so bcrypt is paid once per client, not per request.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import bcrypt from 'bcryptjs';
import { PackError, fsError } from '../errors.js';
import { Limiter } from '../internal/limiter.js';
import { ServeError } from './errors.js';
import { LoginThrottle, LoginThrottled, type LoginLimits } from './login-throttle.js';
import { Lru } from './lru.js';

export type Action = 'pull' | 'push' | 'delete';
export const ACTIONS: readonly Action[] = ['pull', 'push', 'delete'];

export interface AccessRule {
  /** A user name; '*' any signed-in user; '' anonymous. */
  account: string;
  /** Repository name pattern (`*` matches anything). */
  name: string;
  actions: Action[];
}

const BCRYPT_RE = /^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/;

/** `user:hash` lines; only bcrypt hashes are accepted (as docker-registry does). */
export function parseHtpasswd(text: string, file: string): Map<string, string> {
  const users = new Map<string, string>();
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '' || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    const user = line.slice(0, colon);
    const hash = line.slice(colon + 1).trim();
    if (colon <= 0 || !BCRYPT_RE.test(hash)) {
      throw new PackError('USAGE', `${file}:${i + 1}: not a "user:bcrypt-hash" line`, { hint: 'make entries with htpasswd -B (bcrypt); other hash kinds are refused' });
    }
    users.set(user, hash);
  });
  return users;
}

export async function loadHtpasswd(file: string): Promise<Map<string, string>> {
  const text = await readFile(file, 'utf8').catch((e) => {
    throw fsError(e, file, 'cannot read htpasswd file');
  });
  return parseHtpasswd(text, file);
}

export interface UsersFile {
  users: Map<string, string>;
  rules: AccessRule[];
}

/** Reads and checks a users-and-access file; every fault names the file and the entry. */
export async function loadUsersFile(file: string): Promise<UsersFile> {
  const text = await readFile(file, 'utf8').catch((e) => {
    throw fsError(e, file, 'cannot read users file');
  });
  const bad = (what: string): never => {
    throw new PackError('USAGE', `${file}: ${what}`, { hint: 'see "mpk serve --help" for the users-and-access file format' });
  };
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    bad(`not JSON (${(e as Error).message})`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) bad('not a JSON object');
  const o = doc as { users?: unknown; htpasswd?: unknown; access?: unknown };
  let users = new Map<string, string>();
  if (typeof o.htpasswd === 'string') users = await loadHtpasswd(resolve(dirname(file), o.htpasswd));
  if (o.users !== undefined) {
    if (!o.users || typeof o.users !== 'object' || Array.isArray(o.users)) bad('"users" must be an object of user → bcrypt hash');
    for (const [u, h] of Object.entries(o.users as Record<string, unknown>)) {
      if (typeof h !== 'string' || !BCRYPT_RE.test(h) || u === '' || u.includes(':')) bad(`user ${JSON.stringify(u)}: not a bcrypt hash (make one with htpasswd -nbB USER PASSWORD)`);
      users.set(u, h as string);
    }
  }
  if (!Array.isArray(o.access)) bad('"access" must be an array of {account, name, actions}');
  const rules = (o.access as unknown[]).map((r, i): AccessRule => {
    const e = r as Partial<AccessRule>;
    if (!e || typeof e !== 'object' || typeof e.account !== 'string' || typeof e.name !== 'string' || !Array.isArray(e.actions)) {
      return bad(`access[${i}]: needs "account", "name" and "actions"`);
    }
    for (const a of e.actions as string[]) if (!ACTIONS.includes(a as Action) && a !== '*') bad(`access[${i}]: unknown action ${JSON.stringify(a)} (pull, push, delete or *)`);
    const actions = (e.actions as string[]).includes('*') ? [...ACTIONS] : (e.actions as Action[]);
    return { account: e.account, name: e.name, actions };
  });
  return { users, rules };
}

/** What each account may do on each repository. */
export class AccessPolicy {
  private readonly compiled: Array<{ account: string; re: RegExp; actions: Action[] }>;

  /** 'all': every signed-in user may do everything (htpasswd mode); anonymous nothing. */
  constructor(rules: AccessRule[] | 'all') {
    const list = rules === 'all' ? [{ account: '*', name: '*', actions: [...ACTIONS] }] : rules;
    this.compiled = list.map((r) => ({ account: r.account, re: globRe(r.name), actions: r.actions }));
  }

  /** The subset of `wanted` that `user` ('' = anonymous) may do on `name`. */
  granted(user: string, name: string, wanted: readonly Action[]): Action[] {
    const allowed = new Set<Action>();
    for (const r of this.compiled) {
      const who = r.account === user || (r.account === '*' && user !== '');
      if (who && r.re.test(name)) for (const a of r.actions) allowed.add(a);
    }
    return wanted.filter((a) => allowed.has(a));
  }

  allows(user: string, name: string, action: Action): boolean {
    return this.granted(user, name, [action]).length === 1;
  }
}

function globRe(pattern: string): RegExp {
  return new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
}

/** The cost most of these hashes have (10 when there are none), within bcrypt's 4..31. */
function usualRounds(hashes: Iterable<string>): number {
  const count = new Map<number, number>();
  for (const h of hashes) {
    const r = Math.min(31, Math.max(4, bcrypt.getRounds(h)));
    count.set(r, (count.get(r) ?? 0) + 1);
  }
  let best = 10;
  let most = 0;
  for (const [r, n] of count) if (n > most) [best, most] = [r, n];
  return best;
}

export class PasswordChecker {
  private readonly ok = new Lru<string, number>(10_000);
  private readonly limiter = new Limiter(2);
  private waiting = 0;
  /** Checks under way by client and credentials: the same ones sent at once are checked once. */
  private readonly running = new Map<string, Promise<boolean>>();
  readonly throttle: LoginThrottle;
  /**
   * A hash of a random password at the users' usual cost, checked for an unknown user, so that
   * answering one costs what a known user does (a fixed cost-10 hash against `htpasswd -B`'s
   * cost-5 entries would tell which names exist by the time taken).
   */
  private readonly dummy: Promise<string>;

  constructor(
    private readonly users: Map<string, string>,
    private readonly rememberMs = 5 * 60_000,
    limits: Partial<LoginLimits> = {},
  ) {
    this.dummy = bcrypt.hash(randomBytes(18).toString('base64'), usualRounds(users.values()));
    this.throttle = new LoginThrottle(limits);
  }

  get size(): number {
    return this.users.size;
  }

  /**
   * True when `password` is `user`'s. Throws TooBusy when too many checks are queued, and
   * LoginThrottled (before anything is checked, even a remembered success) when `client` (its
   * address) has failed too often and must wait (login-throttle.ts).
   */
  async check(user: string, password: string, client = ''): Promise<boolean> {
    this.throttle.assertAllowed(client, user);
    const key = createHash('sha256').update(`${user}\0${password}`).digest('base64');
    const until = this.ok.get(key);
    if (until !== undefined && until > Date.now()) return true;
    const runKey = `${client}\0${key}`;
    const running = this.running.get(runKey);
    if (running) return running;
    if (this.waiting >= 64) throw new TooBusy();
    const p = this.throttle.attempt(client, user, () => this.verify(user, password, key)).finally(() => this.running.delete(runKey));
    this.running.set(runKey, p);
    return p;
  }

  private async verify(user: string, password: string, key: string): Promise<boolean> {
    this.waiting++;
    try {
      const hash = this.users.get(user);
      const against = hash ?? (await this.dummy);
      const good = await this.limiter.run(() => bcrypt.compare(password, against));
      if (good && hash !== undefined) {
        this.ok.set(key, Date.now() + this.rememberMs);
        return true;
      }
      return false;
    } finally {
      this.waiting--;
    }
  }
}

export class TooBusy extends Error {}

/** A sign-in refused before it was checked: 429 TOOMANYREQUESTS with Retry-After (TooBusy: 1 s). */
export function signInRefused(e: unknown): ServeError | undefined {
  if (e instanceof LoginThrottled) return new ServeError(429, 'TOOMANYREQUESTS', e.message, { 'retry-after': String(e.retryAfterSeconds) });
  if (e instanceof TooBusy) return new ServeError(429, 'TOOMANYREQUESTS', 'too many sign-ins at once', { 'retry-after': '1' });
  return undefined;
}

/** `Authorization: Basic …` → user and password, or undefined. */
export function parseBasic(header: string | undefined): { user: string; password: string } | undefined {
  const m = header ? /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header) : null;
  if (!m) return undefined;
  const text = Buffer.from(m[1]!, 'base64').toString('utf8');
  const i = text.indexOf(':');
  return i < 0 ? undefined : { user: text.slice(0, i), password: text.slice(i + 1) };
}
