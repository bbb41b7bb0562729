/**
 * The web catalog over real HTTP on a real `mpk serve`: pages and JSON API, filters, sort and
 * paging, the index kept current by pushes and deletes, the model page (card, metadata, files,
 * referrers, pull commands), escaping of a hostile model, security headers, and auth: anonymous
 * viewers, sessions (cookie flags, Origin check, throttle), Basic and Bearer.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'node:test';
import bcrypt from 'bcryptjs';
import { HOSTILE_README, pushTestIndex, pushTestModel } from '../../test-support/catalog-models.js';
import { OCI_MANIFEST, putBlob, request, startTestServer, type Res } from '../../test-support/serve.js';
import { requirePeer, selfSignedCert } from '../../test-support/peers.js';
import { tempDir } from '../../test-support/tmp.js';

const GGUF = { 'general.architecture': 'llama', 'general.name': 'Tiny', 'general.license': 'mit', 'llama.context_length': 4096, 'llama.block_count': 2 };

function api<J = any>(r: Res): J { // eslint-disable-line @typescript-eslint/no-explicit-any
  assert.equal(r.status, 200, r.text);
  return r.json<J>();
}

function checkSecurityHeaders(r: Res): void {
  const csp = String(r.headers['content-security-policy']);
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  assert.equal(r.headers['x-content-type-options'], 'nosniff');
}

test('the catalog lists, filters, sorts and pages; the index follows pushes and deletes', async (t) => {
  const s = await startTestServer(t);
  await pushTestModel(s.url, 'acme/llama-small', 'v1', { arch: 'llama', paramSize: '1B', quantization: 'Q4_K_M', weightBytes: 100 });
  await pushTestModel(s.url, 'acme/qwen-big', 'q8', { arch: 'qwen2', paramSize: '7B', quantization: 'Q8_0', weightBytes: 5000 });
  await pushTestModel(s.url, 'other/bert', 'latest', { arch: 'bert', format: 'safetensors', paramSize: '110M', quantization: '', weightBytes: 300 });

  const page = await request(`${s.url}/`);
  assert.equal(page.status, 200);
  assert.match(String(page.headers['content-type']), /^text\/html/);
  checkSecurityHeaders(page);
  for (const n of ['acme/llama-small', 'acme/qwen-big', 'other/bert']) assert.ok(page.text.includes(`href="/r/${n}"`), n);

  const all = api(await request(`${s.url}/-/api/catalog`));
  assert.equal(all.total, 3);
  assert.deepEqual(all.facets.architectures, ['bert', 'llama', 'qwen2']);
  assert.deepEqual(all.facets.formats, ['gguf', 'safetensors']);
  assert.equal(all.repositories[0].latest.architecture, 'llama');

  const names = (r: Res) => api<{ repositories: Array<{ name: string }> }>(r).repositories.map((x) => x.name);
  assert.deepEqual(names(await request(`${s.url}/-/api/catalog?q=qwen`)), ['acme/qwen-big']);
  assert.deepEqual(names(await request(`${s.url}/-/api/catalog?arch=bert`)), ['other/bert']);
  assert.deepEqual(names(await request(`${s.url}/-/api/catalog?format=gguf&quant=Q8_0`)), ['acme/qwen-big']);
  assert.deepEqual(names(await request(`${s.url}/-/api/catalog?sort=size`)), ['acme/qwen-big', 'other/bert', 'acme/llama-small']);
  assert.deepEqual(names(await request(`${s.url}/-/api/catalog?sort=date`)), ['other/bert', 'acme/qwen-big', 'acme/llama-small']);
  const p2 = api(await request(`${s.url}/-/api/catalog?n=2&page=2`));
  assert.deepEqual([p2.page, p2.pages, p2.repositories.map((x: { name: string }) => x.name)], [2, 2, ['other/bert']]);
  const filtered = await request(`${s.url}/?q=qwen&arch=qwen2`);
  assert.ok(filtered.text.includes('acme/qwen-big') && !filtered.text.includes('acme/llama-small'));

  // A push is seen by the next request; a delete too.
  const d2 = await pushTestModel(s.url, 'acme/llama-small', 'v2', { arch: 'llama', quantization: 'Q5_K_M' });
  const repo = api(await request(`${s.url}/-/api/r/acme/llama-small`));
  assert.deepEqual(repo.tags.map((x: { tag: string }) => x.tag), ['v2', 'v1']);
  assert.equal(api(await request(`${s.url}/-/api/catalog?q=llama-small`)).repositories[0].latest.quantization, 'Q5_K_M');
  assert.equal((await request(`${s.url}/v2/acme/llama-small/manifests/${d2}`, { method: 'DELETE' })).status, 202);
  assert.deepEqual(api(await request(`${s.url}/-/api/r/acme/llama-small`)).tags.map((x: { tag: string }) => x.tag), ['v1']);
  const bert = api(await request(`${s.url}/-/api/r/other/bert`)).tags[0].digest;
  await request(`${s.url}/v2/other/bert/manifests/${bert}`, { method: 'DELETE' });
  assert.equal(api(await request(`${s.url}/-/api/catalog`)).total, 2);
  assert.equal((await request(`${s.url}/r/other/bert`)).status, 404);

  // Assets: hashed names, cached for good; unknown pages 404; the registry API is untouched.
  const css = /href="(\/-\/assets\/catalog-[0-9a-f]{12}\.css)"/.exec(page.text)![1]!;
  const cssRes = await request(`${s.url}${css}`);
  assert.equal(cssRes.status, 200);
  assert.match(String(cssRes.headers['cache-control']), /immutable/);
  assert.equal((await request(`${s.url}/-/nothing`)).status, 404);
  assert.equal((await request(`${s.url}/v2/`)).status, 200);
});

test('the model page: card, metadata, files, variants, referrers and pull commands', async (t) => {
  const s = await startTestServer(t);
  const q4 = await pushTestModel(s.url, 'acme/tiny', 'q4', {
    readme: '# Tiny model\n\nA **small** model.\n\n| a | b |\n|--:|---|\n| 1 | 2 |\n',
    gguf: GGUF,
    licenses: ['Apache-2.0'],
    files: { 'docs/usage.md': 'use it' },
  });
  const q8 = await pushTestModel(s.url, 'acme/tiny', 'q8', { quantization: 'Q8_0', gguf: GGUF });
  await pushTestIndex(s.url, 'acme/tiny', 'latest', [
    { digest: q4, quantization: 'Q4_K_M' },
    { digest: q8, quantization: 'Q8_0' },
  ]);
  // A signature-like referrer of q4.
  const empty = await putBlob(s.url, 'acme/tiny', '{}');
  const sig = await putBlob(s.url, 'acme/tiny', 'signature');
  const ref = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: empty, size: 2 },
    layers: [{ mediaType: 'application/octet-stream', digest: sig, size: 9 }],
    subject: { mediaType: OCI_MANIFEST, digest: q4, size: (await request(`${s.url}/v2/acme/tiny/manifests/q4`)).body.length },
  });
  assert.equal((await request(`${s.url}/v2/acme/tiny/manifests/sig`, { method: 'PUT', body: ref, headers: { 'content-type': OCI_MANIFEST } })).status, 201);

  const m = api(await request(`${s.url}/-/api/r/acme/tiny/-/q4`));
  assert.equal(m.digest, q4);
  assert.equal(m.metadata.Architecture, 'llama');
  assert.equal(m.metadata['Context length'], '4096');
  assert.equal(m.metadata.Licence, 'Apache-2.0');
  assert.equal(m.metadata.Quantization, 'Q4_K_M');
  assert.equal(m.gguf['general.name'], 'Tiny');
  assert.deepEqual(m.files.map((f: { path: string }) => f.path), ['model.gguf', 'README.md', 'docs/usage.md']);
  assert.equal(m.card.path, 'README.md');
  assert.equal(m.referrers[0].artifactType, 'application/vnd.dev.cosign.artifact.sig.v1+json');
  const host = new URL(s.url).host;
  assert.equal(m.pull[0].command, `mpk pull ${host}/acme/tiny:q4`);
  assert.ok(m.pull.some((p: { label: string; command: string }) => p.label === 'Ollama' && p.command.includes(`mpk export ollama ${host}/acme/tiny:q4 tiny:q4`)));
  assert.ok(m.pull.some((p: { label: string; command: string }) => p.label === 'Docker Model Runner' && p.command.includes('--format docker')));

  const page = await request(`${s.url}/r/acme/tiny/-/q4`);
  assert.equal(page.status, 200);
  assert.ok(page.text.includes('<h1>Tiny model</h1>') && page.text.includes('<strong>small</strong>'));
  assert.ok(page.text.includes('class="align-right"') && !/ style=/.test(page.text), 'alignment as a class, no style attribute (CSP)');
  assert.ok(page.text.includes(`data-copy="mpk pull ${host}/acme/tiny:q4"`));

  const idx = api(await request(`${s.url}/-/api/r/acme/tiny/-/latest`));
  assert.equal(idx.kind, 'index');
  assert.deepEqual(idx.variants.map((v: { quantization: string }) => v.quantization), ['Q4_K_M', 'Q8_0']);
  const repoPage = await request(`${s.url}/r/acme/tiny`);
  assert.ok(repoPage.text.includes(`href="/r/acme/tiny/-/${encodeURIComponent(q8)}"`), 'the index row lists its variants');
  const byDigest = await request(`${s.url}/r/acme/tiny/-/${q8}`);
  assert.equal(byDigest.status, 200);
  assert.equal((await request(`${s.url}/r/acme/tiny/-/nosuchtag`)).status, 404);
  assert.equal((await request(`${s.url}/r/acme/tiny/-/sha256:${'0'.repeat(64)}`)).status, 404);
});

test('a hostile model is shown as text: card, file names, annotations', async (t) => {
  const s = await startTestServer(t);
  await pushTestModel(s.url, 'evil/model', 'v1', {
    readme: HOSTILE_README,
    files: { '<script>alert(9)</script>.md': 'x', 'a"onmouseover="alert(10).txt': 'y' },
    annotations: { 'org.example.note': '<script>alert(11)</script>', 'x"><script>alert(12)</script>': 'k' },
    arch: '<img src=x onerror=alert(13)>',
  });
  for (const path of ['/', '/r/evil/model', '/r/evil/model/-/v1']) {
    const r = await request(`${s.url}${path}`);
    assert.equal(r.status, 200, path);
    checkSecurityHeaders(r);
    const scripts = r.text.match(/<script\b[^>]*>/g) ?? [];
    assert.deepEqual(scripts.map((x) => /src="\/-\/assets\/catalog-[0-9a-f]{12}\.js"/.test(x)), [true], `${path}: only our own script tag`);
    assert.doesNotMatch(r.text, /<(img|iframe)\b/i, path);
    assert.doesNotMatch(r.text, /<a\b[^>]*href="\s*(javascript|data):/i, path);
    assert.doesNotMatch(r.text, /\son\w+="/i, `${path}: no event handler attribute`);
  }
  const page = (await request(`${s.url}/r/evil/model/-/v1`)).text;
  assert.ok(page.includes('&lt;script&gt;alert(9)&lt;/script&gt;.md'), 'the file name is shown, escaped');
  assert.ok(page.includes('&lt;script&gt;alert(11)&lt;/script&gt;'), 'the annotation is shown, escaped');
});

async function tokenServer(t: Parameters<typeof startTestServer>[0], loginLimits = {}) {
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
        { account: '*', name: 'public/*', actions: ['pull'] },
      ],
    }),
  );
  const s = await startTestServer(t, { tokenUsers: file, loginLimits });
  for (const name of ['public/open', 'team/secret', 'private/hidden']) {
    const q = new URLSearchParams({ service: 'mpk-serve', scope: `repository:${name}:pull,push` });
    const tok = (await request(`${s.url}/token?${q}`, { headers: basic('alice', 'alice-pw') })).json<{ token: string }>().token;
    await pushTestModel(s.url, name, 'v1', { headers: { authorization: `Bearer ${tok}` } });
  }
  return s;
}

const basic = (u: string, p: string) => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });
const listed = async (base: string, headers: Record<string, string> = {}) =>
  api<{ repositories: Array<{ name: string }> }>(await request(`${base}/-/api/catalog`, { headers })).repositories.map((r) => r.name);

test('with token auth: anonymous viewers see what anonymous may pull, and nothing else leaks', async (t) => {
  const s = await tokenServer(t);
  assert.deepEqual(await listed(s.url), ['public/open']);
  const page = await request(`${s.url}/`);
  assert.ok(!page.text.includes('team/secret') && !page.text.includes('private/hidden') && !page.text.includes('llama-x'));
  // A repository one may not see answers exactly as one that does not exist.
  const hidden = await request(`${s.url}/r/team/secret`);
  const absent = await request(`${s.url}/r/team/nothing`);
  assert.equal(hidden.status, 404);
  assert.equal(hidden.text.replaceAll('secret', 'X'), absent.text.replaceAll('nothing', 'X'), 'only the path asked for differs');
  assert.equal((await request(`${s.url}/-/api/r/team/secret/-/v1`)).text, (await request(`${s.url}/-/api/r/team/nothing/-/v1`)).text);
  // Basic and Bearer on the API.
  assert.deepEqual(await listed(s.url, basic('bob', 'bob-pw')), ['public/open', 'team/secret']);
  assert.deepEqual(await listed(s.url, basic('alice', 'alice-pw')), ['private/hidden', 'public/open', 'team/secret']);
  assert.equal((await request(`${s.url}/-/api/catalog`, { headers: basic('bob', 'wrong') })).status, 401);
  const q = new URLSearchParams({ service: 'mpk-serve', scope: 'repository:team/secret:pull' });
  const tok = (await request(`${s.url}/token?${q}`, { headers: basic('bob', 'bob-pw') })).json<{ token: string }>().token;
  assert.deepEqual(await listed(s.url, { authorization: `Bearer ${tok}` }), ['public/open', 'team/secret']);
  // The registry's own _catalog lists the same for the same user.
  const catTok = (await request(`${s.url}/token?service=mpk-serve&scope=registry:catalog:*`, { headers: basic('bob', 'bob-pw') })).json<{ token: string }>().token;
  assert.deepEqual((await request(`${s.url}/v2/_catalog`, { headers: { authorization: `Bearer ${catTok}` } })).json().repositories, ['public/open', 'team/secret']);
  const anonTok = (await request(`${s.url}/token?service=mpk-serve&scope=registry:catalog:*`)).json<{ token: string }>().token;
  assert.deepEqual((await request(`${s.url}/v2/_catalog`, { headers: { authorization: `Bearer ${anonTok}` } })).json().repositories, ['public/open']);
  assert.equal((await request(`${s.url}/-/api/catalog`, { headers: { authorization: 'Bearer nope' } })).status, 401);
});

test('sign-in: a session cookie (HttpOnly, SameSite=Strict), Origin checked, throttled; sign-out', async (t) => {
  const s = await tokenServer(t, { perClientUser: 3, baseDelayMs: 60_000 });
  const origin = s.url;
  const login = (user: string, password: string, headers: Record<string, string> = { origin }) =>
    request(`${s.url}/-/login`, { method: 'POST', body: new URLSearchParams({ user, password, next: '/r/team/secret' }).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } });

  assert.equal((await login('bob', 'bob-pw', {})).status, 403, 'no Origin');
  assert.equal((await login('bob', 'bob-pw', { origin: 'http://evil.example' })).status, 403, 'another Origin');
  const ok = await login('bob', 'bob-pw');
  assert.equal(ok.status, 303);
  assert.equal(ok.headers.location, '/r/team/secret');
  const cookie = String(ok.headers['set-cookie']);
  assert.match(cookie, /^mpk_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/, 'no Secure over plain HTTP');
  const jar = { cookie: cookie.split(';')[0]! };
  assert.deepEqual(await listed(s.url, jar), ['public/open', 'team/secret']);
  assert.equal((await request(`${s.url}/r/team/secret`, { headers: jar })).status, 200);
  assert.ok((await request(`${s.url}/`, { headers: jar })).text.includes('Signed in as <strong>bob</strong>'));
  // An open redirect is refused: next goes back to /.
  const evil = await request(`${s.url}/-/login`, { method: 'POST', body: 'user=bob&password=bob-pw&next=%2F%2Fevil.example', headers: { 'content-type': 'application/x-www-form-urlencoded', origin } });
  assert.equal(evil.headers.location, '/');
  // Sign-out needs the Origin too, then the cookie is worth nothing.
  assert.equal((await request(`${s.url}/-/logout`, { method: 'POST', headers: jar })).status, 403);
  const out = await request(`${s.url}/-/logout`, { method: 'POST', headers: { ...jar, origin } });
  assert.equal(out.status, 303);
  assert.match(String(out.headers['set-cookie']), /mpk_session=; .*Max-Age=0/);
  assert.deepEqual(await listed(s.url, jar), ['public/open']);
  // Guessing: after 3 failures this client waits, even with the right password.
  for (let i = 0; i < 3; i++) assert.equal((await login('alice', `guess-${i}`)).status, 401);
  const blocked = await login('alice', 'alice-pw');
  assert.equal(blocked.status, 429);
  assert.ok(Number(blocked.headers['retry-after']) > 0);
});

test('with basic auth, anonymous viewers see nothing; an open registry needs no sign-in', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'htpasswd');
  await writeFile(file, `carol:${bcrypt.hashSync('carol-pw', 4)}\n`);
  const s = await startTestServer(t, { htpasswd: file });
  await pushTestModel(s.url, 'team/model', 'v1', { headers: basic('carol', 'carol-pw') });
  assert.deepEqual(await listed(s.url), []);
  const page = await request(`${s.url}/`);
  assert.ok(!page.text.includes('team/model') && page.text.includes('href="/-/login'));
  assert.deepEqual(await listed(s.url, basic('carol', 'carol-pw')), ['team/model']);
  const open = await startTestServer(t, { catalog: false });
  assert.equal((await request(`${open.url}/`)).status, 404, '--no-catalog serves no pages');
});

test('under TLS the session cookie is Secure', async (t) => {
  if (!requirePeer(t, 'openssl')) return;
  const dir = await tempDir(t);
  const { key, cert } = await selfSignedCert(dir);
  const file = join(dir, 'htpasswd');
  await writeFile(file, `carol:${bcrypt.hashSync('carol-pw', 4)}\n`);
  const s = await startTestServer(t, { htpasswd: file, tlsCert: cert, tlsKey: key });
  assert.match(s.url, /^https:/);
  const ca = await readFile(cert);
  const r = await request(`${s.url}/-/login`, { method: 'POST', ca, body: 'user=carol&password=carol-pw&next=%2F', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: s.url } });
  assert.equal(r.status, 303, r.text);
  assert.match(String(r.headers['set-cookie']), /; HttpOnly; SameSite=Strict; Max-Age=\d+; Secure$/);
  // The http:// origin of the same host is another origin.
  const plain = await request(`${s.url}/-/login`, { method: 'POST', ca, body: 'user=carol&password=carol-pw', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: s.url.replace('https:', 'http:') } });
  assert.equal(plain.status, 403);
});
