/**
 * Small blobs in one request: mpk serve takes the single POST (201), so a small blob costs one
 * upload request; docker-registry 2.8 answers it with a session (202), which is closed by a PUT,
 * and the host is remembered: later blobs open plain sessions. Once a host took a single POST, a
 * tiny blob is sent without a HEAD first. Both pull back identical.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pullModel, pushModel } from '../transfer/transfer.js';
import { buildModel } from '../build/build-model.js';
import { LocalStore } from '../store/store.js';
import { startTestServer } from '../test-support/serve.js';
import { startFaultProxy, type FaultProxy } from '../test-support/fault-proxy.js';
import { startDockerRegistry } from '../test-support/registry-peer.js';
import { requirePeer } from '../test-support/peers.js';
import { makeModelDir, tempDir } from '../test-support/tmp.js';
import { SINGLE_POST_MAX_BYTES } from './upload-small.js';

async function builtModel(t: TestContext): Promise<{ store: LocalStore; files: Record<string, string | Uint8Array>; blobs: number }> {
  const dir = await tempDir(t);
  const files = await makeModelDir(dir, 's');
  files['model.safetensors'] = Buffer.alloc(60_000, 7); // under the single-POST and no-HEAD sizes
  await writeFile(join(dir, 'model.safetensors'), files['model.safetensors']);
  const store = await LocalStore.open(await tempDir(t));
  t.after(() => store.close());
  const built = await buildModel(store, { contextDir: dir, reference: 'local/s:1' });
  assert.ok(built.manifestBody.layers.every((l) => l.size <= SINGLE_POST_MAX_BYTES), 'every layer is small');
  return { store, files, blobs: built.manifestBody.layers.length + 1 };
}

/** Pushes through a logging proxy, pulls back into a fresh store, compares a file; the upload requests. */
async function pushAndPull(t: TestContext, upstream: string, concurrency?: number): Promise<{ proxy: FaultProxy; blobs: number }> {
  const { store, files, blobs } = await builtModel(t);
  const proxy = await startFaultProxy(t, upstream);
  await pushModel(store, 'local/s:1', `${proxy.host}/small/m:1`, { stallMs: 20_000, ...(concurrency ? { concurrency } : {}) });
  const back = await LocalStore.open(await tempDir(t));
  t.after(() => back.close());
  const pulled = await pullModel(back, `${proxy.host}/small/m:1`, undefined, { stallMs: 20_000 });
  const manifest = JSON.parse(await readFile(join(back.root, 'blobs', 'sha256', pulled.root.digest.slice(7)), 'utf8'));
  const weights = manifest.layers.find((l: { size: number }) => l.size === (files['model.safetensors'] as Uint8Array).length);
  assert.ok(Buffer.from(files['model.safetensors'] as Uint8Array).equals(await readFile(join(back.root, 'blobs', 'sha256', weights.digest.slice(7)))));
  return { proxy, blobs };
}

const uploads = (p: FaultProxy, method: string) => p.log.filter((e) => e.method === method && e.url.includes('/blobs/uploads/'));

test('mpk serve: each small blob is one POST ?digest= (201), no session, no PUT', async (t) => {
  const s = await startTestServer(t);
  const { proxy, blobs } = await pushAndPull(t, s.url);
  const posts = uploads(proxy, 'POST');
  assert.equal(posts.length, blobs, JSON.stringify(proxy.log.map((e) => `${e.method} ${e.url} ${e.status}`)));
  assert.ok(posts.every((e) => e.url.includes('?digest=') && e.status === 201));
  assert.equal(uploads(proxy, 'PUT').length, 0);
  assert.equal(uploads(proxy, 'PATCH').length, 0);
});

test('mpk serve: once a single POST was taken, small blobs go without a HEAD first', async (t) => {
  const s = await startTestServer(t);
  const { proxy, blobs } = await pushAndPull(t, s.url, 1); // one at a time: the first answer is known before the second blob
  const heads = proxy.log.filter((e) => e.method === 'HEAD' && e.url.includes('/small/m/blobs/'));
  assert.equal(heads.length, 1, 'only the first blob is asked for');
  assert.equal(uploads(proxy, 'POST').filter((e) => e.status === 201).length, blobs);
});

test('docker-registry: a single POST answered 202 is closed by a PUT; the host is remembered', async (t) => {
  if (!requirePeer(t, 'docker-registry')) return;
  const reg = await startDockerRegistry(t);
  const { proxy, blobs } = await pushAndPull(t, reg.url, 1); // one at a time: the first answer is known before the second blob
  const posts = uploads(proxy, 'POST');
  assert.equal(posts.length, blobs);
  assert.ok(posts.every((e) => e.status === 202));
  const withBody = posts.filter((e) => e.url.includes('?digest='));
  assert.equal(withBody.length, 1, `${withBody.length} of ${blobs} offered whole`);
  assert.equal(uploads(proxy, 'PUT').filter((e) => e.status === 201).length, blobs);
});
