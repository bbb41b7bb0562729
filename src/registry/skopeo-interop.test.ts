/**
 * Interop with the real client skopeo and the real registry docker-registry:
 * - what mpk pushes, skopeo copies out with the manifest digest unchanged;
 * - what skopeo pushes (a ModelPack artifact, a container image), mpk pulls, lists, inspects, extracts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalStore } from '../store/store.js';
import { buildModel } from '../build/build-model.js';
import { makeModelDir, tempDir } from '../test-support/tmp.js';
import { requirePeer, runCommand } from '../test-support/peers.js';
import { startDockerRegistry } from '../test-support/registry-peer.js';
import { mpk } from '../test-support/cli.js';
import { writeImageLayout } from '../test-support/image-layout.js';

const sha = (b: Uint8Array | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

test('skopeo copies a model that mpk pushed, with the manifest digest unchanged', async (t) => {
  if (!requirePeer(t, 'docker-registry') || !requirePeer(t, 'skopeo')) return;
  const reg = await startDockerRegistry(t);
  const dir = await tempDir(t);
  await makeModelDir(dir);
  const home = await tempDir(t);
  const ref = `${reg.host}/models/interop:v1`;
  const env = { ...process.env, MPK_HOME: home };
  assert.equal((await mpk(env, dir, 'build', '-q', '-t', ref, dir)).code, 0);
  const pushed = await mpk(env, dir, 'push', '--json', ref);
  assert.equal(pushed.code, 0, pushed.stderr);
  const result = JSON.parse(pushed.stdout.trim().split('\n').pop()!);
  const out = join(await tempDir(t), 'layout');
  const r = await runCommand('skopeo', ['copy', '--src-tls-verify=false', '--preserve-digests', `docker://${ref}`, `oci:${out}:copied`]);
  assert.equal(r.code, 0, r.stderr);
  const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8'));
  assert.equal(index.manifests[0].digest, result.digest, 'skopeo stored the manifest mpk pushed, byte for byte');
  const manifest = await readFile(join(out, 'blobs', 'sha256', result.digest.slice(7)));
  assert.equal(sha(manifest), result.digest);
  for (const l of JSON.parse(manifest.toString()).layers) {
    const blob = await readFile(join(out, 'blobs', 'sha256', l.digest.slice(7)));
    assert.equal(sha(blob), l.digest, `layer ${l.annotations?.['org.opencontainers.image.title']} unchanged`);
  }
});

test('mpk pulls and extracts a model artifact that skopeo pushed', async (t) => {
  if (!requirePeer(t, 'docker-registry') || !requirePeer(t, 'skopeo')) return;
  const reg = await startDockerRegistry(t);
  const dir = await tempDir(t);
  const files = await makeModelDir(dir);
  const layout = await tempDir(t);
  const store = await LocalStore.open(layout);
  let digest: string;
  try {
    digest = (await buildModel(store, { contextDir: dir, reference: 'skmodel:v1' })).manifest.digest;
  } finally {
    store.close();
  }
  // skopeo 1.9 takes no '/' in an oci: reference name, hence the plain name in the layout.
  const ref = `${reg.host}/sk/model:v1`;
  const r = await runCommand('skopeo', ['copy', '--dest-tls-verify=false', '--preserve-digests', `oci:${layout}:skmodel:v1`, `docker://${ref}`]);
  assert.equal(r.code, 0, r.stderr);
  const home = await tempDir(t);
  const out = join(await tempDir(t), 'out');
  const env = { ...process.env, MPK_HOME: home };
  const pulled = await mpk(env, dir, 'pull', '--json', ref, '--extract', out);
  assert.equal(pulled.code, 0, pulled.stderr);
  assert.equal(JSON.parse(pulled.stdout.trim().split('\n').pop()!).digest, digest);
  for (const [p, content] of Object.entries(files)) {
    assert.deepEqual(await readFile(join(out, p)), Buffer.from(content), p);
  }
  const ls = await mpk(env, dir, 'ls');
  assert.match(ls.stdout, /sk\/model/);
});

test('mpk pulls and inspects a container image that skopeo pushed', async (t) => {
  if (!requirePeer(t, 'docker-registry') || !requirePeer(t, 'skopeo')) return;
  const reg = await startDockerRegistry(t);
  const layout = await tempDir(t);
  const digest = await writeImageLayout(layout);
  const ref = `${reg.host}/sk/image:v1`;
  const r = await runCommand('skopeo', ['copy', '--dest-tls-verify=false', '--preserve-digests', `oci:${layout}:img`, `docker://${ref}`]);
  assert.equal(r.code, 0, r.stderr);
  const home = await tempDir(t);
  const env = { ...process.env, MPK_HOME: home };
  const pulled = await mpk(env, layout, 'pull', '-q', ref);
  assert.equal(pulled.code, 0, pulled.stderr);
  const inspect = await mpk(env, layout, 'inspect', '--json', ref);
  assert.equal(inspect.code, 0, inspect.stderr);
  const details = JSON.parse(inspect.stdout);
  assert.equal(details.digest, digest);
  assert.equal(details.kind, 'oci-image');
});
