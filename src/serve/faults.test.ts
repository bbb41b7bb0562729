/**
 * Faults and load: kill -9 of the server in the middle of an upload (nothing partial is ever
 * served; after a restart the upload resumes from the session's status), and 16 clients pushing
 * overlapping models at once (all succeed; the root verifies clean; every blob stored once).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { buildModel } from '../build/build-model.js';
import { LocalStore } from '../store/store.js';
import { pullModel, pushModel } from '../transfer/transfer.js';
import { mpk } from '../test-support/cli.js';
import { request, sha256, spawnServer, startTestServer } from '../test-support/serve.js';
import { tempDir, writeTree } from '../test-support/tmp.js';
import { verifyRegistry } from './verify.js';

const MiB = 1024 * 1024;
const OCTET = { 'content-type': 'application/octet-stream' };

test('kill -9 mid-upload: no partial blob is served; after a restart the upload resumes from its status', async (t) => {
  const root = join(await tempDir(t), 'root');
  const p1 = await spawnServer(t, root);
  const blob = randomBytes(6 * MiB);
  const digest = sha256(blob);
  const post = await request(`${p1.url}/v2/crash/test/blobs/uploads/`, { method: 'POST', headers: { 'content-length': 0 } });
  assert.equal(post.status, 202);
  const loc = String(post.headers.location);
  const id = loc.split('/').pop()!;
  const first = await request(`${p1.url}${loc}`, { method: 'PATCH', body: blob.subarray(0, 2 * MiB), headers: { ...OCTET, 'content-range': `0-${2 * MiB - 1}` } });
  assert.equal(first.status, 202);

  // A second chunk is on its way when the server dies.
  const req = http.request(`${p1.url}${loc}`, { method: 'PATCH', headers: { ...OCTET, 'transfer-encoding': 'chunked' }, agent: false });
  req.on('error', () => undefined);
  req.write(blob.subarray(2 * MiB, 3 * MiB + 4321));
  const data = join(root, 'uploads', id, 'data');
  for (let i = 0; i < 200 && (await stat(data)).size <= 2 * MiB; i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok((await stat(data)).size > 2 * MiB, 'part of the second chunk reached the disk');
  await p1.kill9();
  req.destroy();
  assert.deepEqual(await readdir(join(root, 'blobs', 'sha256')).catch(() => []), [], 'nothing reached the pool');

  const p2 = await spawnServer(t, root); // the dead server's lock is broken
  const early = await request(`${p2.url}/v2/crash/test/blobs/${digest}`);
  assert.equal(early.status, 404, 'the partial upload is never served');
  const st = await request(`${p2.url}${loc}`);
  assert.equal(st.status, 204);
  const held = Number(/^0-(\d+)$/.exec(String(st.headers.range))![1]) + 1;
  assert.ok(held > 2 * MiB && held <= 3 * MiB + 4321, `held ${held}`);
  const rest = await request(`${p2.url}${loc}`, { method: 'PATCH', body: blob.subarray(held), headers: { ...OCTET, 'content-range': `${held}-${blob.length - 1}` } });
  assert.equal(rest.status, 202, rest.text);
  const put = await request(`${p2.url}${loc}?digest=${digest}`, { method: 'PUT', headers: { 'content-length': 0 } });
  assert.equal(put.status, 201, put.text);
  const got = await request(`${p2.url}/v2/crash/test/blobs/${digest}`);
  assert.equal(got.status, 200);
  assert.ok(got.body.equals(blob), 'the blob is whole');
  assert.deepEqual((await verifyRegistry(root)).problems, []);
  assert.equal(await p2.stop(), 0, 'SIGTERM stops the server cleanly');
});

test('16 clients push overlapping models at once: all succeed, the root verifies clean, each blob is stored once', async (t) => {
  const s = await startTestServer(t);
  const dirs = await tempDir(t);
  const store = await LocalStore.open(await tempDir(t));
  t.after(() => store.close());
  const shared = randomBytes(700_000);
  const pairs = Array.from({ length: 8 }, () => randomBytes(300_000));
  const refs: string[] = [];
  for (let i = 0; i < 16; i++) {
    const dir = join(dirs, `m${i}`);
    await writeTree(dir, {
      'shared.safetensors': shared,
      'pair.safetensors': pairs[i % 8]!,
      'own.safetensors': randomBytes(200_000),
      'config.json': JSON.stringify({ model_type: 'llama', i }),
    });
    await buildModel(store, { contextDir: dir, reference: `local/m${i}:1` });
    refs.push(`local/m${i}:1`);
  }
  const env = { DOCKER_CONFIG: await tempDir(t) };
  const results = await Promise.all(refs.map((ref, i) => pushModel(store, ref, `${s.host}/team/m${i % 4}:v${i}`, { env })));
  for (const [i, r] of results.entries()) assert.equal(r.root.digest, (await store.resolve(refs[i]!)).digest);

  const v = await verifyRegistry(s.root);
  assert.deepEqual(v.problems, []);
  const cli = await mpk({}, dirs, 'serve', 'verify', '--root', s.root);
  assert.equal(cli.code, 0, cli.stdout);
  assert.match(cli.stdout, /all good/);
  assert.equal(v.repositories, 4);
  assert.equal(v.manifests, 16);
  assert.equal(v.tags, 16);
  // shared + 8 pairs + 16 own + 16 config.json + 16 ModelPack configs + 16 manifests, each once in the pool.
  assert.equal(v.blobs, 1 + 8 + 16 + 16 + 16 + 16);
  for (let r = 0; r < 4; r++) {
    const tags = (await request(`${s.url}/v2/team/m${r}/tags/list`)).json<{ tags: string[] }>().tags;
    assert.deepEqual(tags, [r, r + 4, r + 8, r + 12].map((i) => `v${i}`).sort());
  }
  const back = await LocalStore.open(await tempDir(t));
  t.after(() => back.close());
  const pulled = await pullModel(back, `${s.host}/team/m3:v15`, undefined, { env });
  assert.equal(pulled.root.digest, results[15]!.root.digest);
});
