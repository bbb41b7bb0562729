/**
 * Registry auth against a real docker-registry (Debian's distribution 2.8): Basic (htpasswd) and
 * bearer tokens (the test token issuer), through the library entry points and the CLI (`mpk login`,
 * `logout`, pull with saved credentials or a credential helper). Registries are shared per file
 * (started on first use) except where a test needs its own token settings.
 */
import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pullModel, pushModel, transfer, type TransferOptions } from '../transfer/transfer.js';
import { buildModel, type BuildResult } from '../build/build-model.js';
import { LocalStore } from '../store/store.js';
import { RegistryClient } from './client.js';
import { RemoteRepository } from './repository.js';
import type { Descriptor } from '../oci/descriptor.js';
import { isManifestLike } from '../oci/manifest.js';
import { hasErrorCode, type ErrorCode } from '../errors.js';
import { mpkWith } from '../test-support/cli.js';
import { requirePeer } from '../test-support/peers.js';
import { startDockerRegistry, TOKEN_SERVICE, type RegistryPeer } from '../test-support/registry-peer.js';
import type { AccessFn, TokenIssuer } from '../test-support/token-issuer.js';
import { startFaultProxy } from '../test-support/fault-proxy.js';
import { makeModelDir, tempDir } from '../test-support/tmp.js';

type T = TestContext;

const USERS = { alice: 'alice-secret', reader: 'reader-secret' };
/** alice may do everything; reader may only pull; anonymous nothing. */
const ACCESS: AccessFn = (user, _repo, requested) => (user === 'alice' ? requested : user === 'reader' ? requested.filter((a) => a === 'pull') : []);

const started: Array<Promise<RegistryPeer>> = [];
after(async () => {
  for (const p of started) await (await p).stop();
});
let basicReg: Promise<RegistryPeer> | undefined;
let tokenReg: Promise<RegistryPeer> | undefined;

async function basicRegistry(t: T): Promise<RegistryPeer | null> {
  if (!requirePeer(t, 'docker-registry') || !requirePeer(t, 'htpasswd', 'apache2-utils')) return null;
  if (!basicReg) started.push((basicReg = startDockerRegistry(null, { auth: 'basic', users: USERS })));
  return basicReg;
}

async function tokenRegistry(t: T): Promise<(RegistryPeer & { token: TokenIssuer }) | null> {
  if (!requirePeer(t, 'docker-registry') || !requirePeer(t, 'openssl')) return null;
  if (!tokenReg) started.push((tokenReg = startDockerRegistry(null, { auth: 'token', users: USERS, access: ACCESS })));
  return (await tokenReg) as RegistryPeer & { token: TokenIssuer };
}

async function openStore(t: T): Promise<LocalStore> {
  const store = await LocalStore.open(await tempDir(t));
  t.after(() => store.close());
  return store;
}

async function builtModel(t: T, seed: string): Promise<{ store: LocalStore; built: BuildResult; ref: string }> {
  const dir = await tempDir(t);
  await makeModelDir(dir, seed);
  const store = await openStore(t);
  const ref = `local/${seed}:1`;
  return { store, built: await buildModel(store, { contextDir: dir, reference: ref }), ref };
}

/** Options with no saved logins of the machine: an empty DOCKER_CONFIG, and maybe a credential. */
async function opts(t: T, user?: string, password?: string, extra: TransferOptions = {}): Promise<TransferOptions> {
  const o: TransferOptions = { env: { DOCKER_CONFIG: await tempDir(t), PATH: process.env.PATH }, retries: 2, ...extra };
  if (user !== undefined) o.credential = { username: user, password: password ?? '' };
  return o;
}

async function rejectsWith(p: () => Promise<unknown>, codes: ErrorCode[], check?: (e: Error & { hint?: string }) => void): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(codes.some((c) => hasErrorCode(e, c)), `expected ${codes.join(' or ')}, got ${String(e)}`);
    check?.(e as Error & { hint?: string });
    return true;
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('basic auth: push and pull with the right user; a wrong password or none is UNAUTHORIZED', async (t) => {
  const reg = await basicRegistry(t);
  if (!reg) return;
  const { store, built, ref } = await builtModel(t, 'a');
  const remote = `${reg.host}/tt/basic:v1`;

  await rejectsWith(
    async () => pushModel(store, ref, remote, await opts(t)),
    ['UNAUTHORIZED'],
    (e) => assert.match(e.hint ?? '', new RegExp(`mpk login ${reg.host.replace(/\./g, '\\.')}`)),
  );
  // Credentials the caller gave were refused: check them (not "mpk login", which is what gave them).
  await rejectsWith(async () => pushModel(store, ref, remote, await opts(t, 'alice', 'wrong')), ['UNAUTHORIZED'], (e) => {
    assert.match(e.message, /refused the credentials given \(user "alice" with this password\)/);
    assert.match(e.hint ?? '', /check the user name and password/);
  });
  await rejectsWith(async () => pushModel(store, ref, remote, await opts(t, 'mallory', 'alice-secret')), ['UNAUTHORIZED']);

  const pushed = await pushModel(store, ref, remote, await opts(t, 'alice', USERS.alice));
  assert.equal(pushed.root.digest, built.manifest.digest);
  assert.ok(pushed.stats.transferred >= 7);

  const store2 = await openStore(t);
  await rejectsWith(async () => pullModel(store2, remote, undefined, await opts(t)), ['UNAUTHORIZED'], (e) => assert.match(e.hint ?? '', /mpk login/));
  await rejectsWith(async () => pullModel(store2, remote, undefined, await opts(t, 'reader', 'nope')), ['UNAUTHORIZED']);
  const pulled = await pullModel(store2, remote, undefined, await opts(t, 'reader', USERS.reader));
  assert.equal(pulled.root.digest, built.manifest.digest);
  assert.equal((await store2.resolve(remote)).digest, built.manifest.digest);
});

test('token auth: right scopes, cached tokens, one challenge; a pull-only user cannot push', async (t) => {
  const reg = await tokenRegistry(t);
  if (!reg) return;
  const issuer = reg.token;
  const proxy = await startFaultProxy(t, reg.url);
  const { store, built, ref } = await builtModel(t, 'b');
  const remote = `${proxy.host}/tt/tok:v1`;

  const before = issuer.tokensIssued;
  const firstReq = issuer.requests.length;
  const pushed = await pushModel(store, ref, remote, await opts(t, 'alice', USERS.alice));
  assert.equal(pushed.root.digest, built.manifest.digest);
  assert.ok(pushed.stats.transferred >= 7, JSON.stringify(pushed.stats)); // 6 files + config
  const issued = issuer.tokensIssued - before;
  assert.ok(issued >= 1 && issued <= 4, `tokens issued for one push: ${issued}`);
  const reqs = issuer.requests.slice(firstReq);
  assert.ok(reqs.every((r) => r.user === 'alice' && r.account === 'alice' && r.service === TOKEN_SERVICE && r.status === 200), JSON.stringify(reqs));
  assert.ok(reqs.some((r) => r.scopes.includes('repository:tt/tok:pull,push')), JSON.stringify(reqs));
  assert.ok(reqs.every((r) => r.scopes.every((s) => s.startsWith('repository:tt/tok:'))), JSON.stringify(reqs));
  const challenged = proxy.log.filter((e) => e.status === 401);
  assert.equal(challenged.length, 1, `the challenge is paid once: ${JSON.stringify(challenged)}`);

  // Pull as alice and as reader.
  for (const [user, pw] of Object.entries(USERS)) {
    const s = await openStore(t);
    const before2 = issuer.requests.length;
    const r = await pullModel(s, remote, undefined, await opts(t, user, pw));
    assert.equal(r.root.digest, built.manifest.digest, user);
    const pullReqs = issuer.requests.slice(before2);
    assert.ok(pullReqs.some((q) => q.user === user && q.scopes.includes('repository:tt/tok:pull')), JSON.stringify(pullReqs));
    assert.ok(pullReqs.every((q) => q.scopes.every((sc) => !sc.includes('push'))), `a pull asks only for pull: ${JSON.stringify(pullReqs)}`);
  }

  // reader may not push: neither a new repository nor a new tag.
  await rejectsWith(async () => pushModel(store, ref, `${reg.host}/tt/tok-ro:v1`, await opts(t, 'reader', USERS.reader)), ['DENIED'], (e) =>
    assert.match(e.message, /access denied: user "reader" was not granted pull,push on tt\/tok-ro \(insufficient scope\)/),
  );
  await rejectsWith(async () => pushModel(store, ref, `${reg.host}/tt/tok:v2`, await opts(t, 'reader', USERS.reader)), ['DENIED']);
  const c = new RegistryClient({ credential: { username: 'alice', password: USERS.alice }, retries: 2 });
  t.after(() => c.close());
  await rejectsWith(() => new RemoteRepository(c, reg.host, 'tt/tok-ro').resolve('v1'), ['NOT_FOUND']);
  await rejectsWith(() => new RemoteRepository(c, reg.host, 'tt/tok').resolve('v2'), ['NOT_FOUND']);

  // A wrong password is refused by the token service.
  await rejectsWith(async () => pullModel(await openStore(t), remote, undefined, await opts(t, 'alice', 'wrong')), ['UNAUTHORIZED'], (e) =>
    assert.match(e.hint ?? '', /check the user name and password/),
  );
});

test('token auth: a token the registry stops accepting mid-push is replaced', async (t) => {
  if (!requirePeer(t, 'docker-registry') || !requirePeer(t, 'openssl')) return;
  // expires_in says 63 s, so the client caches each token for ~57 s; but the issuer's clock is 120 s
  // behind and the registry allows 60 s of leeway, so the registry refuses a token 2-3 s after it was
  // issued. Only a client that answers the 401 with a new token gets through.
  const reg = await startDockerRegistry(t, { auth: 'token', users: USERS, access: ACCESS, tokenTtlSeconds: 63, tokenClockOffsetSeconds: -120 });
  const issuer = reg.token!;
  const proxy = await startFaultProxy(t, reg.url);
  const { store, built, ref } = await builtModel(t, 'c');

  // The source is slow on its second blob: 3.5 s, longer than any token issued so far is accepted.
  let blobFetches = 0;
  let logAtResume = -1;
  let tokensAtResume = -1;
  const slow = Object.create(store) as LocalStore;
  slow.fetch = async (d: Descriptor, o?: { signal?: AbortSignal }): Promise<Readable> => {
    if (!isManifestLike(d.mediaType) && ++blobFetches === 2) {
      await sleep(3500);
      logAtResume = proxy.log.length;
      tokensAtResume = issuer.tokensIssued;
    }
    return store.fetch(d, o);
  };

  const remote = `${proxy.host}/tt/expiring:v1`;
  const r = await pushModel(slow, ref, remote, await opts(t, 'alice', USERS.alice, { concurrency: 1 }));
  assert.equal(r.root.digest, built.manifest.digest);
  assert.ok(logAtResume > 0, 'the slow blob was read');
  const afterResume = proxy.log.slice(logAtResume);
  const refused = afterResume.filter((e) => e.status === 401);
  assert.ok(refused.length >= 1, `the registry refused the old token: ${JSON.stringify(afterResume.map((e) => [e.method, e.url.slice(0, 60), e.status]))}`);
  assert.ok(
    refused.some((e) => e.method === 'PUT' && e.url.includes('/blobs/uploads/')),
    `the streamed upload of the slow blob met the expired token: ${JSON.stringify(refused)}`,
  );
  assert.ok(issuer.tokensIssued > tokensAtResume, 'a new token was fetched after the 401');
  assert.ok(!afterResume.slice(-3).some((e) => e.status === 401), 'the push ended with accepted requests');
  const c = new RegistryClient({ credential: { username: 'alice', password: USERS.alice }, retries: 2 });
  t.after(() => c.close());
  const repo = new RemoteRepository(c, reg.host, 'tt/expiring');
  assert.equal((await repo.resolve('v1')).digest, built.manifest.digest);
  const files = await pullModel(await openStore(t), `${reg.host}/tt/expiring:v1`, undefined, await opts(t, 'alice', USERS.alice));
  assert.equal(files.stats.transferred, r.stats.transferred, 'every blob pushed is there');
});

test('token auth: a cross-repository mount asks for pull on the source repository', async (t) => {
  const reg = await tokenRegistry(t);
  if (!reg) return;
  const issuer = reg.token;
  const { store, built, ref } = await builtModel(t, 'd');
  const o = await opts(t, 'alice', USERS.alice);
  await pushModel(store, ref, `${reg.host}/tt/msrc:v1`, o);
  const firstReq = issuer.requests.length;
  const r = await transfer(undefined, `${reg.host}/tt/msrc:v1`, `${reg.host}/tt/mdst:v1`, o);
  assert.equal(r.root.digest, built.manifest.digest);
  assert.ok(r.stats.mounted >= 7, JSON.stringify(r.stats));
  assert.equal(r.stats.bytes, 0);
  const reqs = issuer.requests.slice(firstReq);
  assert.ok(
    reqs.some((q) => q.scopes.includes('repository:tt/msrc:pull') && q.scopes.includes('repository:tt/mdst:pull,push')),
    JSON.stringify(reqs.map((q) => q.scopes)),
  );
});

// ---- CLI: login, logout, saved credentials, credential helpers ----

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** The CLI in-process, with standard input for --password-stdin. */
const mpk = (env: NodeJS.ProcessEnv, stdin: string | undefined, ...argv: string[]): Promise<CliRun> => mpkWith({ env, ...(stdin === undefined ? {} : { stdin }) }, ...argv);

const exists = async (p: string): Promise<boolean> => readFile(p).then(() => true, () => false);

test('mpk login --password-stdin saves the login that pull then uses; logout removes it', async (t) => {
  const reg = await basicRegistry(t);
  if (!reg) return;
  const { store, ref, built } = await builtModel(t, 'e');
  const remote = `${reg.host}/tt/cli:v1`;
  await pushModel(store, ref, remote, await opts(t, 'alice', USERS.alice));

  const cfgDir = await tempDir(t);
  const env = { DOCKER_CONFIG: cfgDir, MPK_HOME: await tempDir(t), HOME: await tempDir(t), PATH: process.env.PATH };
  const cfgFile = join(cfgDir, 'config.json');

  const bad = await mpk(env, 'wrong\n', 'login', reg.host, '-u', 'alice', '--password-stdin');
  assert.equal(bad.code, 8, bad.stderr);
  assert.match(bad.stderr, /^mpk: .*Hint: /);
  assert.deepEqual(await readdir(cfgDir), [], 'nothing written');

  const ok = await mpk(env, `${USERS.alice}\n`, 'login', reg.host, '-u', 'alice', '--password-stdin');
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /Login succeeded/);
  const saved = await readFile(cfgFile, 'utf8');
  const cfg = JSON.parse(saved) as { auths: Record<string, { auth?: string }> };
  assert.equal(cfg.auths[reg.host]?.auth, Buffer.from(`alice:${USERS.alice}`).toString('base64'));

  const bad2 = await mpk(env, 'wrong\n', 'login', reg.host, '-u', 'alice', '--password-stdin');
  assert.equal(bad2.code, 8);
  assert.equal(await readFile(cfgFile, 'utf8'), saved, 'a refused login leaves config.json as it was');

  const pulled = await mpk(env, undefined, 'pull', '--json', remote);
  assert.equal(pulled.code, 0, pulled.stderr);
  const result = JSON.parse(pulled.stdout.trim().split('\n').pop()!) as { digest: string };
  assert.equal(result.digest, built.manifest.digest);
  const local = await LocalStore.open(env.MPK_HOME);
  t.after(() => local.close());
  assert.equal((await local.resolve(remote)).digest, built.manifest.digest);

  const out = await mpk(env, undefined, 'logout', reg.host);
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stdout, /Removed/);
  const after = JSON.parse(await readFile(cfgFile, 'utf8')) as { auths?: Record<string, unknown> };
  assert.equal(after.auths?.[reg.host], undefined);
  const denied = await mpk(env, undefined, 'pull', remote);
  assert.equal(denied.code, 8, denied.stderr);
  assert.match(denied.stderr, /mpk login/);
  assert.match((await mpk(env, undefined, 'logout', reg.host)).stdout, /Not logged in/);
});

test('pull with a credential helper named by credsStore', async (t) => {
  const reg = await basicRegistry(t);
  if (!reg) return;
  const { store, ref, built } = await builtModel(t, 'f');
  const remote = `${reg.host}/tt/helper:v1`;
  await pushModel(store, ref, remote, await opts(t, 'alice', USERS.alice));

  const bin = await tempDir(t);
  const calls = join(bin, 'calls.log');
  const helper = join(bin, 'docker-credential-test');
  await writeFile(
    helper,
    [
      '#!/bin/sh',
      'read -r server || true',
      `echo "$1 $server" >> '${calls}'`,
      `if [ "$1" = get ] && [ "$server" = '${reg.host}' ]; then`,
      `  printf '{"ServerURL":"%s","Username":"reader","Secret":"${USERS.reader}"}' "$server"`,
      '  exit 0',
      'fi',
      'echo "credentials not found in native keychain"',
      'exit 1',
      '',
    ].join('\n'),
  );
  await chmod(helper, 0o755);
  const cfgDir = await tempDir(t);
  await writeFile(join(cfgDir, 'config.json'), JSON.stringify({ credsStore: 'test' }));
  const env = { DOCKER_CONFIG: cfgDir, MPK_HOME: await tempDir(t), HOME: await tempDir(t), PATH: `${bin}:${process.env.PATH}` };

  const r = await mpk(env, undefined, 'pull', '-q', remote);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(await exists(calls), 'the helper ran');
  assert.deepEqual((await readFile(calls, 'utf8')).trim().split('\n'), [`get ${reg.host}`], 'asked once, for this host');
  const local = await LocalStore.open(env.MPK_HOME);
  t.after(() => local.close());
  assert.equal((await local.resolve(remote)).digest, built.manifest.digest);

  // The helper's answer is what authenticates: without the helper on PATH the pull is refused.
  const noHelper = { ...env, PATH: process.env.PATH, MPK_HOME: await tempDir(t) };
  const failed = await mpk(noHelper, undefined, 'pull', '-q', remote);
  assert.notEqual(failed.code, 0);
  assert.match(failed.stderr, /docker-credential-test/);
});
