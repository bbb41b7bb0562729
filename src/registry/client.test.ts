/**
 * The registry client against `mpk serve` (and a hostile front for it): redirects only to http(s),
 * host names case-insensitive (LOCALHOST is loopback: plain http), and the messages of refused
 * access: who is denied what on a 403, and a refused password that does not send the user back to
 * the `mpk login` just run.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { mpkWith } from '../test-support/cli.js';
import { hasErrorCode } from '../errors.js';
import { pullModel, pushModel } from '../transfer/transfer.js';
import { buildModel } from '../build/build-model.js';
import { LocalStore } from '../store/store.js';
import { RegistryClient } from './client.js';
import { isLoopbackHost } from './transport.js';
import { startTestServer } from '../test-support/serve.js';
import { makeModelDir, tempDir } from '../test-support/tmp.js';

async function openStore(t: TestContext, root?: string): Promise<LocalStore> {
  const store = await LocalStore.open(root ?? (await tempDir(t)));
  t.after(() => store.close());
  return store;
}

/** A store holding a small model as `local/m:1`. */
async function builtStore(t: TestContext): Promise<{ root: string; store: LocalStore; digest: string }> {
  const dir = await tempDir(t);
  await makeModelDir(dir, 'c');
  const root = await tempDir(t);
  const store = await openStore(t, root);
  const built = await buildModel(store, { contextDir: dir, reference: 'local/m:1' });
  return { root, store, digest: built.manifest.digest };
}

/** The CLI in-process, with standard input for --password-stdin. */
const cli = (env: NodeJS.ProcessEnv, stdin: string | undefined, ...argv: string[]) => mpkWith({ env: { PATH: process.env.PATH, ...env }, ...(stdin === undefined ? {} : { stdin }) }, ...argv);

/** An HTTP front for `upstream`: `intercept` answers what it wants to (true), the rest is passed on. */
async function front(t: TestContext, upstream: string, intercept: (req: IncomingMessage, res: ServerResponse) => boolean): Promise<string> {
  const srv = createServer((req, res) => {
    if (intercept(req, res)) return;
    const up = httpRequest(`${upstream}${req.url}`, { method: req.method, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => srv.close(() => r())));
  srv.unref();
  return `127.0.0.1:${(srv.address() as AddressInfo).port}`;
}

/** A front that answers every blob GET with a redirect to `location`. */
const redirectingFront = (t: TestContext, upstream: string, location: string): Promise<string> =>
  front(t, upstream, (req, res) => {
    if (req.method !== 'GET' || !/\/blobs\/sha256:/.test(req.url ?? '')) return false;
    res.writeHead(307, { location, 'content-length': '0' }).end();
    return true;
  });

test('a blob redirected to file:///etc/passwd is refused with a clear REGISTRY error (exit 9), nothing read', async (t) => {
  const s = await startTestServer(t);
  const { store } = await builtStore(t);
  await pushModel(store, 'local/m:1', `${s.host}/r/m:1`);
  const front = await redirectingFront(t, s.url, 'file:///etc/passwd');

  await assert.rejects(
    async () => pullModel(await openStore(t), `${front}/r/m:1`, undefined, { retries: 1 }),
    (e: Error) => {
      assert.ok(hasErrorCode(e, 'REGISTRY'), `REGISTRY, got ${String(e)}`);
      assert.match(e.message, /redirected to file:\/\/\/etc\/passwd; only http and https redirects are followed/);
      return true;
    },
  );
  const c = new RegistryClient({ retries: 1 });
  t.after(() => c.close());
  await assert.rejects(c.request(front, { method: 'GET', path: '/v2/r/m/blobs/sha256:00', scopes: [] }), (e: Error) => hasErrorCode(e, 'REGISTRY'));
  // An upload Location (used as given) of another scheme is refused the same way, not a TypeError.
  await assert.rejects(c.transport.send({ method: 'PUT', url: new URL('file:///etc/passwd') }), (e: Error) => hasErrorCode(e, 'REGISTRY') && /file:\/\/\/etc\/passwd: not an http\(s\) URL/.test(e.message));

  const r = await cli({ MPK_HOME: await tempDir(t), DOCKER_CONFIG: await tempDir(t) }, undefined, 'pull', `${front}/r/m:1`);
  assert.equal(r.code, 9, r.stderr);
  assert.match(r.stderr, /^mpk: .*redirected to file:\/\/\/etc\/passwd/m);
  assert.doesNotMatch(r.stderr, /internal error|TypeError|    at /);
});

test('host names are case-insensitive: LOCALHOST:PORT is loopback (plain http) and names the same model as localhost', async (t) => {
  for (const h of ['LOCALHOST', 'LocalHost:5000', 'localhost:5000', '127.0.0.1:5000', '[::1]:5000']) assert.ok(isLoopbackHost(h), h);
  assert.ok(!isLoopbackHost('localhost.example.com:5000'));
  const c = new RegistryClient();
  t.after(() => c.close());
  assert.match(c.baseUrl('LOCALHOST:5000'), /^http:\/\//);

  const s = await startTestServer(t);
  const { store, digest } = await builtStore(t);
  await pushModel(store, 'local/m:1', `localhost:${s.port}/h/m:1`);
  const store2 = await openStore(t);
  const pulled = await pullModel(store2, `LOCALHOST:${s.port}/h/m:1`, undefined, { retries: 1 });
  assert.equal(pulled.root.digest, digest);
  assert.equal((await store2.resolve(`localhost:${s.port}/h/m:1`)).digest, digest, 'stored under the lowercase host');
});

/** mpk serve in token mode: alice may do anything, bob may pull team/*, anonymous may pull public/*. */
async function tokenServer(t: TestContext) {
  const dir = await tempDir(t);
  const file = join(dir, 'users.json');
  const h = (p: string) => bcrypt.hashSync(p, 4);
  const access = [
    { account: 'alice', name: '*', actions: ['pull', 'push', 'delete'] },
    { account: 'bob', name: 'team/*', actions: ['pull'] },
    { account: '', name: 'public/*', actions: ['pull'] },
  ];
  await writeFile(file, JSON.stringify({ users: { alice: h('alice-pw'), bob: h('bob-pw') }, access }));
  return startTestServer(t, { tokenUsers: file });
}

/** A DOCKER_CONFIG folder holding a saved login for host (none without user). */
async function dockerConfig(t: TestContext, host: string, user?: string, password?: string): Promise<string> {
  const d = await tempDir(t);
  if (user) await writeFile(join(d, 'config.json'), JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${user}:${password}`).toString('base64') } } }));
  return d;
}

test('a forbidden pull says who is denied what (user or anonymous, action, repository), not "HTTP 403 (HTTP 403)"', async (t) => {
  const s = await tokenServer(t);
  const { store } = await builtStore(t);
  await pushModel(store, 'local/m:1', `${s.host}/private/m:1`, { credential: { username: 'alice', password: 'alice-pw' } });

  const bob = await cli({ MPK_HOME: await tempDir(t), DOCKER_CONFIG: await dockerConfig(t, s.host, 'bob', 'bob-pw') }, undefined, 'pull', `${s.host}/private/m:1`);
  assert.equal(bob.code, 8, bob.stderr);
  assert.match(bob.stderr, /access denied: user "bob" may not pull private\/m \(HTTP 403/);
  assert.match(bob.stderr, /Hint: ask the registry admin for access, or log in as a user who may/);

  const anon = await cli({ MPK_HOME: await tempDir(t), DOCKER_CONFIG: await dockerConfig(t, s.host) }, undefined, 'pull', `${s.host}/private/m:1`);
  assert.equal(anon.code, 8, anon.stderr);
  assert.match(anon.stderr, /access denied: anonymous users may not pull private\/m/);
  assert.match(anon.stderr, new RegExp(`Hint: log in as a user who may: mpk login ${s.host} -u USER`));

  for (const r of [bob, anon]) {
    assert.doesNotMatch(r.stderr, /HTTP 403 \(HTTP 403\)/);
    assert.doesNotMatch(r.stderr, /Failed: 0 of 0/, 'no blob failed: no failure summary before the error');
    const lines = r.stderr.trim().split('\n').filter((l) => !/new store/.test(l));
    assert.equal(lines.length, 1, `the error line only: ${r.stderr}`);
  }
});

test('a refused password: mpk login says to check it (not to run mpk login again); a stale saved login says to log in again', async (t) => {
  const s = await tokenServer(t);
  const cfg = await tempDir(t);
  const login = await cli({ DOCKER_CONFIG: cfg }, 'wrong\n', 'login', s.host, '-u', 'bob', '--password-stdin');
  assert.equal(login.code, 8, login.stderr);
  assert.match(login.stderr, /the registry refused the credentials given \(user "bob" with this password\)/);
  assert.match(login.stderr, /Hint: check the user name and password/);
  assert.doesNotMatch(login.stderr, /mpk login/);

  const stale = await cli({ MPK_HOME: await tempDir(t), DOCKER_CONFIG: await dockerConfig(t, s.host, 'bob', 'old-pw') }, undefined, 'pull', `${s.host}/team/m:1`);
  assert.equal(stale.code, 8, stale.stderr);
  assert.match(stale.stderr, /the registry refused the saved login \(user "bob"\)/);
  assert.match(stale.stderr, new RegExp(`Hint: save the current one with: mpk login ${s.host} -u bob`));
});

test('a registry out of space (507) is said so at once: no retries, exit 9', async (t) => {
  const s = await startTestServer(t);
  const { root } = await builtStore(t);
  let posts = 0;
  // in front of mpk serve: upload sessions answered as a full disk answers them
  const fullDisk = await front(t, s.url, (req, res) => {
    if (req.method !== 'POST' || !/\/blobs\/uploads\//.test(req.url ?? '')) return false;
    posts++;
    const body = JSON.stringify({ errors: [{ code: 'UNKNOWN', message: 'registry out of space', detail: { reason: 'no space left on device' } }] });
    res.writeHead(507, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
    return true;
  });
  const started = Date.now();
  const r = await cli({ MPK_HOME: root, DOCKER_CONFIG: await tempDir(t) }, undefined, 'push', 'local/m:1', `${fullDisk}/r/m:1`);
  assert.equal(r.code, 9, r.stderr);
  assert.match(r.stderr, /registry out of space \(HTTP 507: no space left on device\)\. Hint: the registry's disk is full/);
  assert.ok(Date.now() - started < 5000, `${Date.now() - started} ms: not retried`);
  assert.ok(posts <= 8, `${posts} upload sessions asked for: one per blob at most`);
});
