/**
 * Real clients against `mpk serve`: mpk's own (push in chunks, pull into a second store, copy with
 * cross-repository mounts, a failed chunk resumed from the session's status, a cut download resumed
 * with Range), and skopeo (a container image and a ModelPack artifact, both directions, digests
 * unchanged, without auth and with basic auth).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildModel } from '../build/build-model.js';
import { extractModel } from '../extract/extract.js';
import { LocalStore } from '../store/store.js';
import { pullModel, pushModel, transfer } from '../transfer/transfer.js';
import { startFaultProxy } from '../test-support/fault-proxy.js';
import { writeImageLayout } from '../test-support/image-layout.js';
import { requirePeer, runCommand } from '../test-support/peers.js';
import { request, startTestServer } from '../test-support/serve.js';
import { tempDir, writeTree } from '../test-support/tmp.js';

const sha = (b: Uint8Array | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const MiB = 1024 * 1024;

async function model(t: TestContext, ref = 'local/m:1'): Promise<{ store: LocalStore; dir: string; digest: string; files: Record<string, Buffer | string> }> {
  const dir = await tempDir(t);
  const files = { 'model.safetensors': randomBytes(3 * MiB + 123), 'config.json': '{"model_type":"llama"}', 'tokenizer.json': '{"v":1}', 'README.md': '# m\n' };
  await writeTree(dir, files);
  const store = await LocalStore.open(await tempDir(t));
  t.after(() => store.close());
  const digest = (await buildModel(store, { contextDir: dir, reference: ref })).manifest.digest;
  return { store, dir, digest, files };
}

async function openStore(t: TestContext): Promise<LocalStore> {
  const s = await LocalStore.open(await tempDir(t));
  t.after(() => s.close());
  return s;
}

const env = async (t: TestContext) => ({ env: { DOCKER_CONFIG: await tempDir(t) } });

test('mpk push (chunked), pull into a second store, extract: same digest, same bytes', async (t) => {
  const s = await startTestServer(t);
  const m = await model(t);
  const remote = `${s.host}/team/model:v1`;
  const pushed = await pushModel(m.store, 'local/m:1', remote, { ...(await env(t)), chunkSize: MiB });
  assert.equal(pushed.root.digest, m.digest);
  const store2 = await openStore(t);
  const pulled = await pullModel(store2, remote, undefined, await env(t));
  assert.equal(pulled.root.digest, m.digest);
  const out = await tempDir(t);
  await extractModel(store2, remote, out);
  for (const [p, content] of Object.entries(m.files)) assert.deepEqual(await readFile(join(out, p)), Buffer.from(content), p);
  const again = await pushModel(m.store, 'local/m:1', remote, await env(t));
  assert.equal(again.stats.transferred, 0, 'a second push moves nothing');
});

test('mpk copy between repositories of mpk serve mounts the blobs', async (t) => {
  const s = await startTestServer(t);
  const m = await model(t);
  await pushModel(m.store, 'local/m:1', `${s.host}/src/model:v1`, await env(t));
  const r = await transfer(undefined, `${s.host}/src/model:v1`, `${s.host}/dst/model:v1`, await env(t));
  assert.equal(r.root.digest, m.digest);
  assert.ok(r.stats.mounted >= 4, `mounted: ${JSON.stringify(r.stats)}`);
  assert.equal(r.stats.bytes, 0, 'no blob bytes sent');
  assert.equal((await request(`${s.url}/v2/dst/model/manifests/v1`)).status, 200);
});

test('mpk resumes through faults: a failed PATCH goes on from the upload status; a cut download from its Range', async (t) => {
  const s = await startTestServer(t);
  const proxy = await startFaultProxy(t, s.url);
  const m = await model(t);
  let patches = 0;
  proxy.rules.push({ match: (r) => r.method === 'PATCH' && ++patches === 2, status: 503, times: 1 });
  const remote = `${proxy.host}/faulty/model:v1`;
  const pushed = await pushModel(m.store, 'local/m:1', remote, { ...(await env(t)), chunkSize: MiB });
  assert.equal(pushed.root.digest, m.digest);
  assert.ok(proxy.log.some((e) => e.method === 'PATCH' && e.faulted === 'status 503'));
  assert.ok(proxy.log.some((e) => e.method === 'GET' && e.url.includes('/blobs/uploads/') && e.status === 204), 'asked the session how far it got');

  const weight = sha(m.files['model.safetensors']!);
  proxy.rules.push({ match: (r) => r.method === 'GET' && r.url.endsWith(`/blobs/${weight}`), cutAfterBytes: 2 * MiB + 5, times: 1 });
  const store2 = await openStore(t);
  const pulled = await pullModel(store2, remote, undefined, await env(t));
  assert.equal(pulled.root.digest, m.digest);
  const gets = proxy.log.filter((e) => e.method === 'GET' && e.url.endsWith(`/blobs/${weight}`));
  assert.equal(gets.length, 2);
  assert.equal(gets[1]!.status, 206, 'the second GET is a Range request');
  assert.deepEqual(await store2.blobs.read({ mediaType: 'x/y', digest: weight, size: m.files['model.safetensors']!.length }, 8 * MiB), m.files['model.safetensors']);
});

async function layoutDigest(dir: string): Promise<string> {
  return JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')).manifests[0].digest;
}

async function skopeoRoundTrip(t: TestContext, host: string, creds: string[]): Promise<void> {
  const skopeo = async (...args: string[]) => {
    const r = await runCommand('skopeo', ['copy', '--src-tls-verify=false', '--dest-tls-verify=false', ...args]);
    assert.equal(r.code, 0, `skopeo copy ${args.join(' ')}: ${r.stderr}`);
  };
  // A container image, there and back.
  const img = await tempDir(t);
  const imgDigest = await writeImageLayout(img);
  await skopeo('--preserve-digests', ...creds.flatMap((c) => ['--dest-creds', c]), `oci:${img}:img`, `docker://${host}/sk/image:v1`);
  const back = join(await tempDir(t), 'image');
  await skopeo(...creds.flatMap((c) => ['--src-creds', c]), `docker://${host}/sk/image:v1`, `oci:${back}:img`);
  assert.equal(await layoutDigest(back), imgDigest, 'the image manifest came back byte for byte');
  // A ModelPack artifact built by mpk (its store is an OCI layout), there and back.
  const m = await model(t, 'skmodel:v1');
  await skopeo('--preserve-digests', ...creds.flatMap((c) => ['--dest-creds', c]), `oci:${m.store.root}:skmodel:v1`, `docker://${host}/sk/model:v1`);
  const mback = join(await tempDir(t), 'model');
  await skopeo(...creds.flatMap((c) => ['--src-creds', c]), `docker://${host}/sk/model:v1`, `oci:${mback}:model`);
  assert.equal(await layoutDigest(mback), m.digest, 'the ModelPack manifest came back byte for byte');
  const manifest = JSON.parse(await readFile(join(mback, 'blobs', 'sha256', m.digest.slice(7)), 'utf8'));
  for (const l of manifest.layers) assert.equal(sha(await readFile(join(mback, 'blobs', 'sha256', l.digest.slice(7)))), l.digest);
}

test('skopeo copies a container image and a ModelPack artifact to and from mpk serve, digests unchanged', async (t) => {
  if (!requirePeer(t, 'skopeo')) return;
  const s = await startTestServer(t);
  await skopeoRoundTrip(t, s.host, []);
});

test('skopeo with basic auth: refused without credentials, round trip with them', async (t) => {
  if (!requirePeer(t, 'skopeo') || !requirePeer(t, 'htpasswd', 'apache2-utils')) return;
  const dir = await tempDir(t);
  const line = await runCommand('htpasswd', ['-Bbn', 'bob', 'pw123']);
  await writeFile(join(dir, 'htpasswd'), line.stdout);
  const s = await startTestServer(t, { htpasswd: join(dir, 'htpasswd') });
  const img = await tempDir(t);
  await writeImageLayout(img);
  const denied = await runCommand('skopeo', ['copy', '--dest-tls-verify=false', '--dest-no-creds', `oci:${img}:img`, `docker://${s.host}/sk/denied:v1`]);
  assert.notEqual(denied.code, 0);
  assert.match(denied.stderr, /unauthorized|authentication required/i);
  await skopeoRoundTrip(t, s.host, ['bob:pw123']);
});
