/**
 * Auth and access: basic (htpasswd bcrypt), token mode (the /token endpoint, per-repository pull,
 * push and delete), TLS, and the refusal to serve an open registry beyond loopback. A user who may
 * only pull can neither push nor delete, over raw HTTP and through mpk's own client.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { hasErrorCode } from '../errors.js';
import { buildModel } from '../build/build-model.js';
import { pullModel, pushModel } from '../transfer/transfer.js';
import { LocalStore } from '../store/store.js';
import { requirePeer, runCommand, selfSignedCert } from '../test-support/peers.js';
import { OCI_MANIFEST, putBlob, putImage, request, specError, startTestServer } from '../test-support/serve.js';
import { makeModelDir, tempDir } from '../test-support/tmp.js';
import { PasswordChecker } from './access.js';
import { startServer } from './server.js';

const basicHeader = (u: string, p: string) => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });

test('basic auth (htpasswd -B): 401 with a Basic challenge without or with wrong credentials; full access with them', async (t) => {
  if (!requirePeer(t, 'htpasswd', 'apache2-utils')) return;
  const dir = await tempDir(t);
  const line = await runCommand('htpasswd', ['-Bbn', 'alice', 's3cret']);
  assert.equal(line.code, 0);
  await writeFile(join(dir, 'htpasswd'), line.stdout);
  const s = await startTestServer(t, { htpasswd: join(dir, 'htpasswd') });
  const anon = await request(`${s.url}/v2/`);
  assert.equal(anon.status, 401);
  assert.equal(anon.headers['www-authenticate'], 'Basic realm="mpk-serve"');
  assert.equal(anon.headers['docker-distribution-api-version'], 'registry/2.0');
  assert.deepEqual(anon.json(), { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required', detail: 'authentication required' }] });
  const wrong = await request(`${s.url}/v2/`, { headers: basicHeader('alice', 'nope') });
  assert.equal(wrong.status, 401);
  assert.equal(specError(wrong).code, 'UNAUTHORIZED');
  assert.equal((await request(`${s.url}/v2/`, { headers: basicHeader('mallory', 's3cret') })).status, 401);
  assert.equal((await request(`${s.url}/v2/`, { headers: basicHeader('alice', 's3cret') })).status, 200);
  const img = await putImage(s.url, 'team/m', 'v1', { headers: basicHeader('alice', 's3cret') });
  assert.equal((await request(`${s.url}/v2/team/m/manifests/v1`)).status, 401);
  assert.equal((await request(`${s.url}/v2/team/m/manifests/v1`, { headers: basicHeader('alice', 's3cret') })).status, 200);
  assert.equal((await request(`${s.url}/v2/team/m/manifests/${img.digest}`, { method: 'DELETE', headers: basicHeader('alice', 's3cret') })).status, 202);
  assert.equal((await request(`${s.url}/healthz`)).status, 200, 'health needs no credentials');
});

async function tokenServer(t: Parameters<typeof startTestServer>[0]) {
  const dir = await tempDir(t);
  const file = join(dir, 'users.json');
  const h = (p: string) => bcrypt.hashSync(p, 4);
  await writeFile(
    file,
    JSON.stringify({
      users: { alice: h('alice-pw'), bob: h('bob-pw') },
      access: [
        { account: 'alice', name: '*', actions: ['pull', 'push', 'delete'] },
        { account: 'bob', name: 'team/*', actions: ['pull'] },
        { account: '', name: 'public/*', actions: ['pull'] },
      ],
    }),
  );
  return startTestServer(t, { tokenUsers: file });
}

async function token(base: string, scope: string[], user?: [string, string]): Promise<string> {
  const q = new URLSearchParams({ service: 'mpk-serve' });
  for (const s of scope) q.append('scope', s);
  const r = await request(`${base}/token?${q}`, { headers: user ? basicHeader(...user) : {} });
  assert.equal(r.status, 200, r.text);
  const doc = r.json<{ token: string; access_token: string; expires_in: number }>();
  assert.equal(doc.token, doc.access_token);
  assert.equal(doc.expires_in, 300);
  return doc.token;
}

const bearer = (tok: string) => ({ authorization: `Bearer ${tok}` });

test('token mode: a Bearer challenge names /token; tokens carry what the rules grant; pull-only users cannot push or delete', async (t) => {
  const s = await tokenServer(t);
  const anon = await request(`${s.url}/v2/team/m/manifests/v1`);
  assert.equal(anon.status, 401);
  assert.equal(anon.headers['www-authenticate'], `Bearer realm="${s.url}/token",service="mpk-serve",scope="repository:team/m:pull"`);
  const bad = await request(`${s.url}/token?scope=repository:team/m:pull`, { headers: basicHeader('bob', 'wrong') });
  assert.equal(bad.status, 401);
  assert.equal(specError(bad).code, 'UNAUTHORIZED');

  const alice = await token(s.url, ['repository:team/m:pull,push,delete'], ['alice', 'alice-pw']);
  const img = await putImage(s.url, 'team/m', 'v1', { headers: bearer(alice) });
  assert.equal((await request(`${s.url}/v2/`, { headers: bearer(alice) })).status, 200);

  const bob = await token(s.url, ['repository:team/m:pull,push,delete'], ['bob', 'bob-pw']);
  const claims = JSON.parse(Buffer.from(bob.split('.')[1]!, 'base64url').toString());
  assert.deepEqual(claims.access, [{ type: 'repository', name: 'team/m', actions: ['pull'] }]);
  assert.equal((await request(`${s.url}/v2/team/m/manifests/v1`, { headers: bearer(bob) })).status, 200);
  assert.equal((await request(`${s.url}/v2/team/m/blobs/${img.layer}`, { headers: bearer(bob) })).status, 200);
  for (const [method, path, body] of [
    ['PUT', '/v2/team/m/manifests/v2', img.bytes],
    ['POST', '/v2/team/m/blobs/uploads/', undefined],
    ['DELETE', `/v2/team/m/manifests/${img.digest}`, undefined],
    ['DELETE', '/v2/team/m/manifests/v1', undefined],
    ['DELETE', `/v2/team/m/blobs/${img.layer}`, undefined],
  ] as const) {
    const r = await request(`${s.url}${path}`, { method, headers: { ...bearer(bob), 'content-type': OCI_MANIFEST }, ...(body ? { body } : {}) });
    assert.equal(r.status, 403, `${method} ${path}: ${r.text}`);
    assert.equal(specError(r).code, 'DENIED');
  }
  assert.equal((await request(`${s.url}/v2/team/m/manifests/v1`, { headers: bearer(alice) })).status, 200, 'nothing was deleted');
  // Outside team/*, bob gets nothing at all.
  const other = await token(s.url, ['repository:other/x:pull'], ['bob', 'bob-pw']);
  assert.equal((await request(`${s.url}/v2/other/x/tags/list`, { headers: bearer(other) })).status, 403);
  // A token for too little, where the rules allow more: 401 insufficient_scope, so the client asks again.
  const narrow = await token(s.url, ['repository:team/m:pull'], ['alice', 'alice-pw']);
  const up = await request(`${s.url}/v2/team/m/blobs/uploads/`, { method: 'POST', headers: bearer(narrow) });
  assert.equal(up.status, 401);
  assert.match(String(up.headers['www-authenticate']), /scope="repository:team\/m:push",error="insufficient_scope"/);
  // Forged or foreign tokens are refused.
  const forged = alice.slice(0, -4) + (alice.endsWith('AAAA') ? 'BBBB' : 'AAAA');
  const f = await request(`${s.url}/v2/team/m/manifests/v1`, { headers: bearer(forged) });
  assert.equal(f.status, 401);
  assert.match(String(f.headers['www-authenticate']), /error="invalid_token"/);
  // Anonymous: public/* may be pulled, the rest is denied.
  const anonTok = await token(s.url, ['repository:public/p:pull', 'repository:team/m:pull']);
  assert.equal((await request(`${s.url}/v2/team/m/manifests/v1`, { headers: bearer(anonTok) })).status, 403);
  assert.equal((await request(`${s.url}/v2/public/p/tags/list`, { headers: bearer(anonTok) })).status, 404, 'allowed, and unknown');
});

test('token mode: password grant by POST, and the catalog lists only what the caller may pull', async (t) => {
  const s = await tokenServer(t);
  const alice = await token(s.url, ['repository:team/a:push,pull', 'repository:zed/b:push,pull'], ['alice', 'alice-pw']);
  await putImage(s.url, 'team/a', 'v1', { headers: bearer(alice) });
  await putImage(s.url, 'zed/b', 'v1', { headers: bearer(alice) });
  const form = new URLSearchParams({ grant_type: 'password', username: 'bob', password: 'bob-pw', service: 'mpk-serve', scope: 'registry:catalog:*' });
  const r = await request(`${s.url}/token`, { method: 'POST', body: form.toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  assert.equal(r.status, 200, r.text);
  const bob = r.json<{ token: string }>().token;
  const cat = await request(`${s.url}/v2/_catalog`, { headers: bearer(bob) });
  assert.equal(cat.status, 200, cat.text);
  assert.deepEqual(cat.json(), { repositories: ['team/a'] });
  const noScope = await request(`${s.url}/v2/_catalog`, { headers: bearer(await token(s.url, [], ['bob', 'bob-pw'])) });
  assert.equal(noScope.status, 401);
  const badGrant = await request(`${s.url}/token`, { method: 'POST', body: 'grant_type=refresh_token&refresh_token=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  assert.equal(badGrant.status, 400);
});

test("mpk's client against token mode: alice pushes, bob pulls, bob's push is refused as DENIED", async (t) => {
  const s = await tokenServer(t);
  const dir = await tempDir(t);
  await makeModelDir(dir, 't');
  const store = await LocalStore.open(await tempDir(t));
  t.after(() => store.close());
  await buildModel(store, { contextDir: dir, reference: 'local/t:1' });
  const env = { DOCKER_CONFIG: await tempDir(t) };
  const remote = `${s.host}/team/tok:v1`;
  const pushed = await pushModel(store, 'local/t:1', remote, { env, credential: { username: 'alice', password: 'alice-pw' } });
  const store2 = await LocalStore.open(await tempDir(t));
  t.after(() => store2.close());
  const pulled = await pullModel(store2, remote, undefined, { env, credential: { username: 'bob', password: 'bob-pw' } });
  assert.equal(pulled.root.digest, pushed.root.digest);
  await assert.rejects(
    pushModel(store, 'local/t:1', `${s.host}/team/tok:v2`, { env, credential: { username: 'bob', password: 'bob-pw' } }),
    (e: unknown) => hasErrorCode(e, 'DENIED'),
  );
  const tags = await request(`${s.url}/v2/team/tok/tags/list`, { headers: bearer(await token(s.url, ['repository:team/tok:pull'], ['alice', 'alice-pw'])) });
  assert.deepEqual(tags.json(), { name: 'team/tok', tags: ['v1'] });
});

test('TLS with --tls-cert/--tls-key: https answers with the certificate; plain http does not', async (t) => {
  if (!requirePeer(t, 'openssl')) return;
  const { key, cert } = await selfSignedCert(await tempDir(t));
  const s = await startTestServer(t, { tlsCert: cert, tlsKey: key });
  assert.match(s.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const ca = await readFile(cert);
  const base = await request(`${s.url}/v2/`, { ca });
  assert.equal(base.status, 200);
  await assert.rejects(putBlob(s.url, 'tls', 'over tls'), 'without the CA the certificate is not trusted');
  assert.equal((await request(`${s.url}/v2/tls/blobs/uploads/`, { method: 'POST', ca, headers: { 'content-length': 0 } })).status, 202);
  await assert.rejects(request(`${s.url.replace('https', 'http')}/v2/`), 'plain http to a TLS port fails');
});

test('an open registry is refused on a non-loopback address (unless --insecure-open); flags are checked', async (t) => {
  const root = join(await tempDir(t), 'root');
  await assert.rejects(startServer({ root, addr: '0.0.0.0:0' }), (e: unknown) => hasErrorCode(e, 'USAGE') && /without authentication/.test((e as Error).message));
  await assert.rejects(startServer({ root, addr: ':0' }), (e: unknown) => hasErrorCode(e, 'USAGE'));
  await assert.rejects(startServer({ root, addr: 'nonsense' }), (e: unknown) => hasErrorCode(e, 'USAGE'));
  await assert.rejects(startServer({ root, addr: '127.0.0.1:0', tlsCert: '/x' }), (e: unknown) => hasErrorCode(e, 'USAGE'));
  const bad = join(root, '..', 'bad.htpasswd');
  await writeFile(bad, 'alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n');
  await assert.rejects(startServer({ root, addr: '127.0.0.1:0', htpasswd: bad }), (e: unknown) => hasErrorCode(e, 'USAGE') && /bcrypt/.test((e as { hint?: string }).hint ?? ''));
});

test('an unknown user name costs what a known one does (no telling which names exist by the time taken)', async () => {
  // Limits off: this measures the checks, not the brake on guessing (login-throttle.test.ts).
  const checker = new PasswordChecker(new Map([['alice', bcrypt.hashSync('alice-pw', 4)], ['bob', bcrypt.hashSync('bob-pw', 4)]]), undefined, { perClientUser: 100, perClient: 100 });
  assert.equal(await checker.check('alice', 'alice-pw'), true);
  assert.equal(await checker.check('mallory', 'guess'), false); // warm-up
  const median = async (user: string): Promise<number> => {
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      assert.equal(await checker.check(user, `wrong-${i}`), false);
      times.push(performance.now() - t0);
    }
    return times.sort((a, b) => a - b)[2]!;
  };
  const known = await median('alice');
  const unknown = await median('mallory');
  assert.ok(unknown < known * 4 + 20, `unknown user ${unknown.toFixed(1)} ms, known user ${known.toFixed(1)} ms`);
});
