/**
 * The brake on password guessing: a flood of wrong passwords is mostly refused unchecked (429,
 * Retry-After), while the real user signing in from another address is not locked out; the waits
 * grow exponentially and are capped; counts are forgotten. HTTP clients are told apart by their
 * source address: 127.0.0.2 and up are loopback too (`localAddress`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { startTestServer, type Res } from '../test-support/serve.js';
import { tempDir } from '../test-support/tmp.js';
import { LoginThrottle, LoginThrottled, clientKey } from './login-throttle.js';

const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

/** A GET from the source address `from`. */
function get(url: string, from: string, headers: Record<string, string> = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { agent: false, localAddress: from, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        const b = Buffer.concat(parts);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b, text: b.toString('utf8'), json: () => JSON.parse(b.toString('utf8')) });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

async function usersDir(t: Parameters<typeof tempDir>[0]): Promise<string> {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'htpasswd'), `alice:${bcrypt.hashSync('s3cret', 4)}\n`);
  await writeFile(join(dir, 'users.json'), JSON.stringify({ htpasswd: 'htpasswd', access: [{ account: 'alice', name: '*', actions: ['pull', 'push'] }] }));
  return dir;
}

/** 200 wrong passwords from `from`, 20 at a time: the statuses seen. */
async function flood(url: string, from: string, user = 'alice'): Promise<Res[]> {
  const out: Res[] = [];
  for (let i = 0; i < 200; i += 20) {
    out.push(...(await Promise.all(Array.from({ length: 20 }, (_, j) => get(url, from, { authorization: basic(user, `guess-${i + j}`) })))));
  }
  return out;
}

function assertMostlyRefused(answers: Res[]): void {
  const refused = answers.filter((r) => r.status === 429);
  const checked = answers.filter((r) => r.status === 401);
  assert.equal(refused.length + checked.length, 200, answers.map((r) => r.status).join(' '));
  assert.ok(checked.length <= 10, `${checked.length} of 200 guesses were checked`);
  for (const r of refused) {
    assert.match(String(r.headers['retry-after']), /^[1-9]\d*$/);
    if (r.body.length > 0 && r.headers['content-type'] === 'application/json' && 'errors' in r.json()) assert.equal(r.json().errors[0].code, 'TOOMANYREQUESTS');
  }
}

test('basic auth: 200 wrong passwords in a burst are mostly 429 with Retry-After; the right one from another address still signs in', async (t) => {
  const dir = await usersDir(t);
  const s = await startTestServer(t, { htpasswd: join(dir, 'htpasswd') });
  assertMostlyRefused(await flood(`${s.url}/v2/`, '127.0.0.1'));
  // The guessing address cannot even confirm a right guess now.
  const blocked = await get(`${s.url}/v2/`, '127.0.0.1', { authorization: basic('alice', 's3cret') });
  assert.equal(blocked.status, 429);
  // The owner, elsewhere, is not locked out; a typo there is an ordinary 401.
  assert.equal((await get(`${s.url}/v2/`, '127.0.0.2', { authorization: basic('alice', 's3cret') })).status, 200);
  assert.equal((await get(`${s.url}/v2/`, '127.0.0.2', { authorization: basic('alice', 'typo') })).status, 401);
  assert.equal((await get(`${s.url}/v2/`, '127.0.0.2', { authorization: basic('alice', 's3cret') })).status, 200);
  // Parallel requests with the same right credentials are checked once, not taken for guesses.
  const same = await Promise.all(Array.from({ length: 30 }, () => get(`${s.url}/v2/`, '127.0.0.3', { authorization: basic('alice', 's3cret') })));
  assert.deepEqual([...new Set(same.map((r) => r.status))], [200]);
});

test('token mode: guessing through /token is braked the same way; another address gets its token', async (t) => {
  const dir = await usersDir(t);
  const s = await startTestServer(t, { tokenUsers: join(dir, 'users.json') });
  assertMostlyRefused(await flood(`${s.url}/token?service=mpk-serve&scope=repository:a:pull`, '127.0.0.1'));
  const ok = await get(`${s.url}/token?service=mpk-serve&scope=repository:a:pull`, '127.0.0.2', { authorization: basic('alice', 's3cret') });
  assert.equal(ok.status, 200, ok.text);
  assert.ok(ok.json().token);
});

test('many addresses guessing one user: past the per-user limit those that failed wait, a clean address signs in', async (t) => {
  const dir = await usersDir(t);
  const s = await startTestServer(t, { htpasswd: join(dir, 'htpasswd'), loginLimits: { perUser: 10 } });
  for (let i = 10; i < 22; i++) assert.equal((await get(`${s.url}/v2/`, `127.0.0.${i}`, { authorization: basic('alice', `guess-${i}`) })).status, 401);
  const again = await get(`${s.url}/v2/`, '127.0.0.10', { authorization: basic('alice', 's3cret') });
  assert.equal(again.status, 429, 'an address that guessed waits, even with the right password');
  assert.equal((await get(`${s.url}/v2/`, '127.0.0.30', { authorization: basic('alice', 's3cret') })).status, 200);
});

test('waits double after each failure past the limit, up to the cap; a success clears only its own client-and-user count; counts are forgotten', async () => {
  let now = 0;
  const th = new LoginThrottle({ perClient: 100, perClientUser: 3, perUser: 1000, baseDelayMs: 1000, maxDelayMs: 8000, forgetMs: 60_000 }, () => now);
  const wrong = () => th.attempt('10.0.0.1', 'alice', async () => false);
  const waitOf = async (p: Promise<unknown>) => {
    try {
      await p;
      return 0;
    } catch (e) {
      assert.ok(e instanceof LoginThrottled);
      return e.retryAfterSeconds;
    }
  };
  for (let i = 0; i < 3; i++) assert.equal(await waitOf(wrong()), 0);
  const waits: number[] = [];
  for (let i = 0; i < 6; i++) {
    const w = await waitOf(wrong());
    waits.push(w);
    now += w * 1000;
    assert.equal(await waitOf(wrong()), 0, 'checked again once the wait is over');
  }
  assert.deepEqual(waits, [1, 2, 4, 8, 8, 8]);
  assert.equal(await waitOf(th.attempt('10.0.0.2', 'alice', async () => true)), 0, 'another client is not concerned');
  assert.equal(await waitOf(th.attempt('10.0.0.1', 'bob', async () => false)), 0, 'nor another user from the same client');
  now += 8000 + 60_001;
  assert.equal(await waitOf(wrong()), 0);
  assert.equal(await waitOf(wrong()), 0, 'forgotten: three more before a wait');
  // A success clears the client's count for that user: its next typo is not a wait.
  await th.attempt('10.0.0.1', 'alice', async () => true);
  assert.equal(await waitOf(wrong()), 0);
  // Checks under way count: at most the limit run at once for one client and user.
  let release!: () => void;
  const gate = new Promise<boolean>((r) => (release = () => r(false)));
  const slow = [0, 1, 2].map(() => th.attempt('10.0.0.9', 'carol', () => gate));
  assert.ok((await waitOf(th.attempt('10.0.0.9', 'carol', async () => false))) >= 1);
  release();
  await Promise.all(slow);
});

test('clients are counted by IPv4 address and by IPv6 /64', () => {
  assert.equal(clientKey('127.0.0.2'), '127.0.0.2');
  assert.equal(clientKey('::ffff:10.1.2.3'), '10.1.2.3');
  assert.equal(clientKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  assert.equal(clientKey('2001:db8:1:2::99'), '2001:db8:1:2::/64');
  assert.equal(clientKey('2001:db8::1'), '2001:db8:0:0::/64');
  assert.equal(clientKey('::1'), '0:0:0:0::/64');
  assert.equal(clientKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
});
