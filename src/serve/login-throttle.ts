/**
 * A brake on password guessing (Basic sign-ins and /token): failed sign-ins are counted per client
 * address, per client and user, and per user; past a limit the client must wait before its next
 * sign-in is even checked (429 with Retry-After): 1 s, then twice as long after each further
 * failure, at most 5 minutes; the count is forgotten 15 minutes after the last failure.
 *
 * The design keeps an attacker from locking a real user out:
 *  - per client and user (5 failures): the guesser of one account waits; the account's owner,
 *    signing in from another address, is not concerned;
 *  - per client (20 failures, any users): one address spraying many accounts waits;
 *  - per user across clients (100 failures): many addresses guessing one account. This one only
 *    binds the clients that have themselves failed for that user: a client with a clean record
 *    (the owner) still signs in, while each guessing address gets at most one guess per wait.
 * A success clears its own client-and-user count only: knowing one account's password (the
 * attacker's own) must not reset the count of guesses at another, nor the per-user count.
 * While a client is made to wait, even a right password is refused unchecked, so a guess can never
 * be confirmed by a blocked client (also not through the remembered-success cache).
 * Sign-ins still being checked count as failures against the limits, so 200 guesses sent at once
 * get no more checks than 200 sent one after the other (the password checker runs one check for
 * identical credentials sent at once: a client's parallel requests are not taken for guesses).
 * IPv6 clients are counted by their /64 (one host usually has the whole /64). The address is the
 * TCP peer's: behind a reverse proxy every client is the proxy, and they share the limits.
 */
import { Lru } from './lru.js';

export interface LoginLimits {
  /** Failures (any users) from one client before it waits (default 20). */
  perClient: number;
  /** Failures for one user from one client before that client waits (default 5). */
  perClientUser: number;
  /** Failures for one user from every client before the clients that failed for it wait (default 100). */
  perUser: number;
  /** The first wait (default 1 s); each further failure doubles it, up to `maxDelayMs` (default 5 min). */
  baseDelayMs: number;
  maxDelayMs: number;
  /** A count is dropped this long after its last failure (default 15 min). */
  forgetMs: number;
}

export const DEFAULT_LOGIN_LIMITS: LoginLimits = { perClient: 20, perClientUser: 5, perUser: 100, baseDelayMs: 1000, maxDelayMs: 300_000, forgetMs: 900_000 };

/** A sign-in refused unchecked: wait `retryAfterSeconds`. */
export class LoginThrottled extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super(`too many failed sign-ins: try again in ${retryAfterSeconds} s`);
    this.name = 'LoginThrottled';
  }
}

interface Count {
  failures: number;
  /** Checks under way. */
  pending: number;
  /** No sign-in is checked before this time. */
  until: number;
  last: number;
}

/** Records kept per kind; past it the least recently used go (memory stays bounded). */
const MAX_RECORDS = 20_000;

export class LoginThrottle {
  readonly limits: LoginLimits;
  private readonly clients = new Lru<string, Count>(MAX_RECORDS);
  private readonly clientUsers = new Lru<string, Count>(MAX_RECORDS);
  private readonly users = new Lru<string, Count>(MAX_RECORDS);

  constructor(
    limits: Partial<LoginLimits> = {},
    private readonly now: () => number = Date.now,
  ) {
    this.limits = { ...DEFAULT_LOGIN_LIMITS, ...limits };
  }

  /** Throws LoginThrottled when `client` must wait before signing in as `user`. */
  assertAllowed(client: string, user: string): void {
    this.counts(clientKey(client), user, false);
  }

  /**
   * Runs `check` (the password check) unless the client must wait (then LoginThrottled, and
   * `check` is not run), and counts its outcome.
   */
  async attempt(client: string, user: string, check: () => Promise<boolean>): Promise<boolean> {
    const c = clientKey(client);
    const counts = this.counts(c, user, true);
    for (const [n] of counts) n.pending++;
    let ok = false;
    try {
      ok = await check();
    } finally {
      for (const [n] of counts) n.pending--;
    }
    if (ok) this.clientUsers.delete(`${c}\0${user}`);
    else for (const [n, limit] of counts) this.fail(n, limit);
    return ok;
  }

  /** The counts a sign-in of `user` by client `c` answers to, each with its limit; throws when one says wait. */
  private counts(c: string, user: string, withPending: boolean): Array<[Count, number]> {
    const l = this.limits;
    const counts: Array<[Count, number]> = [
      [this.count(this.clients, c), l.perClient],
      [this.count(this.clientUsers, `${c}\0${user}`), l.perClientUser],
    ];
    // The per-user limit binds only the clients that have failed for this user themselves.
    const perUser = this.count(this.users, user);
    if (counts[1]![0].failures > 0) counts.push([perUser, l.perUser]);
    const now = this.now();
    let wait = 0;
    for (const [n, limit] of counts) {
      if (n.until > now) wait = Math.max(wait, n.until - now);
      else if (withPending && n.pending > 0 && n.failures + n.pending >= limit) wait = Math.max(wait, l.baseDelayMs); // the checks under way may fail
    }
    if (wait > 0) throw new LoginThrottled(Math.max(1, Math.ceil(wait / 1000)));
    if (counts.length === 2) counts.push([perUser, l.perUser]); // a clean client's failure still counts for the user
    return counts;
  }

  private fail(n: Count, limit: number): void {
    const now = this.now();
    n.failures++;
    n.last = now;
    if (n.failures >= limit) {
      const l = this.limits;
      n.until = now + Math.min(l.maxDelayMs, l.baseDelayMs * 2 ** Math.min(n.failures - limit, 30));
    }
  }

  /** The count under `key`, a fresh one when there is none or it is forgotten. */
  private count(map: Lru<string, Count>, key: string): Count {
    const now = this.now();
    let n = map.get(key);
    if (n && n.pending === 0 && n.until <= now && now - n.last > this.limits.forgetMs) n = undefined;
    if (!n) {
      n = { failures: 0, pending: 0, until: 0, last: now };
      map.set(key, n);
    }
    return n;
  }
}

/** The client as counted: an IPv4 address (also IPv4-mapped IPv6) whole, an IPv6 address by its /64. */
export function clientKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!address.includes(':')) return address;
  const [head = '', tail] = address.toLowerCase().split('%')[0]!.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}
