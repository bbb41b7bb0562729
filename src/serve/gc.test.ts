/**
 * Garbage collection: what nothing references goes (unreferenced links, pool blobs no repository
 * links, expired upload sessions), what is younger than the grace period or still named by a
 * manifest stays, and the root verifies clean afterwards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { putBlob, putImage, request, startTestServer } from '../test-support/serve.js';
import { collectGarbage } from './gc.js';
import { RepoStore } from './repo-store.js';
import { lockRoot } from './root-lock.js';
import { Uploads } from './uploads.js';
import { verifyRegistry } from './verify.js';

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('collection removes unreferenced links and blobs after the grace period, and keeps what manifests name', async (t) => {
  const s = await startTestServer(t);
  const a = await putImage(s.url, 'g/one', 'v1', { seed: 'a' });
  const orphan = await putBlob(s.url, 'g/one', 'uploaded, never referenced');
  const b = await putImage(s.url, 'g/two', 'v1', { seed: 'b' });
  assert.equal((await request(`${s.url}/v2/g/two/manifests/${b.digest}`, { method: 'DELETE' })).status, 202);
  const pool = () => readdir(join(s.root, 'blobs', 'sha256')).then((l) => l.length);
  assert.equal(await pool(), 7);

  const young = await s.collect(3600_000);
  assert.deepEqual([young.blobsRemoved, young.linksRemoved], [0, 0], 'nothing is older than the grace period');

  await pause(20);
  const r = await s.collect(0);
  assert.deepEqual(r.problems, []);
  assert.equal(r.linksRemoved, 3, 'the orphan in g/one, config and layer of the deleted manifest in g/two');
  assert.deepEqual(r.blobs.sort(), [orphan, b.digest, b.config, b.layer].sort());
  assert.equal(await pool(), 3);
  for (const d of [a.digest]) assert.equal((await request(`${s.url}/v2/g/one/manifests/${d}`)).status, 200);
  for (const d of [a.config, a.layer]) assert.equal((await request(`${s.url}/v2/g/one/blobs/${d}`)).status, 200);
  assert.equal((await request(`${s.url}/v2/g/one/blobs/${orphan}`)).status, 404);
  assert.deepEqual((await verifyRegistry(s.root)).problems, []);
  // A later push of the same content works again.
  const again = await putImage(s.url, 'g/two', 'v2', { seed: 'b' });
  assert.equal(again.digest, b.digest);
});

test('a blob that one repository lets go stays in the pool while a manifest elsewhere names it', async (t) => {
  const s = await startTestServer(t);
  const kept = await putImage(s.url, 'p', 'v1', { seed: 'k' });
  await putBlob(s.url, 'q', 'layer of k'); // the same bytes as p's layer, unreferenced in q
  await pause(20);
  const r = await s.collect(0);
  assert.equal(r.linksRemoved, 1);
  assert.equal(r.blobsRemoved, 0, "p's manifest still names the layer");
  assert.equal((await request(`${s.url}/v2/q/blobs/${kept.layer}`)).status, 404);
  assert.equal((await request(`${s.url}/v2/p/blobs/${kept.layer}`)).status, 200);
});

test('upload sessions expire after their time-to-live', async (t) => {
  const s = await startTestServer(t, { uploadTtlMs: 50 });
  const post = await request(`${s.url}/v2/exp/blobs/uploads/`, { method: 'POST', headers: { 'content-length': 0 } });
  const loc = String(post.headers.location);
  await request(`${s.url}${loc}`, { method: 'PATCH', body: 'partial', headers: { 'content-type': 'application/octet-stream' } });
  assert.equal((await request(`${s.url}${loc}`)).status, 204);
  await pause(120);
  const r = await s.collect();
  assert.equal(r.uploadsRemoved, 1);
  assert.equal((await request(`${s.url}${loc}`)).status, 404);
  assert.deepEqual(await readdir(join(s.root, 'uploads')), []);
});

test('an online collection interval longer than a node timer (24.8 days) is waited, not run every millisecond', async (t) => {
  const s = await startTestServer(t, { gcIntervalMs: 30 * 86400_000, gcGraceMs: 0 });
  const orphan = await putBlob(s.url, 'long/wait', 'not referenced, and collectable at once');
  await pause(150);
  assert.equal((await request(`${s.url}/v2/long/wait/blobs/${orphan}`, { method: 'HEAD' })).status, 200, 'a collection ran long before its interval');
});

test('close() waits for a collection under way before it gives up the root', async (t) => {
  const s = await startTestServer(t, { uploadTtlMs: 1 });
  for (let i = 0; i < 300; i++) {
    const dir = join(s.root, 'uploads', `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'data'), 'x');
    await writeFile(join(dir, 'info.json'), '{"name":"a"}');
  }
  await pause(10);
  let settled = false;
  const gc = s.collect(0).finally(() => (settled = true));
  await s.close();
  assert.equal(settled, true, 'the root was released while the collection still ran');
  // The periodic sweep (every second with this time-to-live) may take some of them at the same
  // time; each session is counted by the pass that removed it, so look at the folder.
  assert.ok((await gc).uploadsRemoved > 0);
  assert.deepEqual(await readdir(join(s.root, 'uploads')), [], 'every expired session is gone');
  const release = await lockRoot(s.root, 'the test');
  await release();
});

test('a mount of a blob the repository already links renews the link, so the collection spares it for the manifest to come', async (t) => {
  const s = await startTestServer(t);
  const d = await putBlob(s.url, 'm/dst', 'pushed long ago, unreferenced');
  const old = new Date(Date.now() - 2 * 3600_000);
  await utimes(join(s.root, 'repositories', 'm', 'dst', '_blobs', 'sha256', d.slice(7)), old, old);
  const mount = await request(`${s.url}/v2/m/dst/blobs/uploads/?mount=${d}&from=m/src`, { method: 'POST', headers: { 'content-length': 0 } });
  assert.equal(mount.status, 201, 'already in the repository');
  const r = await s.collect(3600_000);
  assert.equal(r.linksRemoved, 0, 'the client was just told the blob is here');
  assert.equal((await request(`${s.url}/v2/m/dst/blobs/${d}`, { method: 'HEAD' })).status, 200);
});

test('a repository of many path components (70, within the 255 characters) is seen by the collection: its content stays', async (t) => {
  const s = await startTestServer(t);
  const name = Array.from({ length: 70 }, (_, i) => `c${i % 10}`).join('/');
  const img = await putImage(s.url, name, 'v1');
  await pause(20);
  const r = await s.collect(0);
  assert.deepEqual(r.blobs, [], 'content a manifest names was collected');
  assert.equal((await request(`${s.url}/v2/${name}/blobs/${img.layer}`)).status, 200);
  assert.deepEqual((await request(`${s.url}/v2/_catalog`)).json(), { repositories: [name] });
});

test('a collection reports what it freed, in count and bytes: blobs, upload sessions, links, temp files (a dry run, what it would)', async (t) => {
  const s = await startTestServer(t);
  await putImage(s.url, 'f/kept', 'v1');
  const orphan = await putBlob(s.url, 'f/one', 'x'.repeat(1000));
  const loc = String((await request(`${s.url}/v2/f/two/blobs/uploads/`, { method: 'POST', headers: { 'content-length': 0 } })).headers.location);
  assert.equal((await request(`${s.url}${loc}`, { method: 'PATCH', body: Buffer.alloc(100_000, 1), headers: { 'content-type': 'application/octet-stream' } })).status, 202);
  await s.close();
  const store = new RepoStore(s.root);
  await mkdir(store.pool.ingestDir, { recursive: true });
  await writeFile(join(store.pool.ingestDir, 'left-by-a-crash'), Buffer.alloc(5000));
  const info = (await stat(join(s.root, 'uploads', loc.split('/').pop()!, 'info.json'))).size;
  const later = Date.now() + 2 * 86400_000; // past the grace period and the 24 h upload time-to-live
  const want = { uploadsRemoved: 1, uploadBytes: 100_000 + info, blobsRemoved: 1, blobBytes: 1000, linksRemoved: 1, linkBytes: 0, tempsRemoved: 1, tempBytes: 5000, bytesFreed: 106_000 + info };
  const pick = (r: Record<string, unknown>) => Object.fromEntries(Object.keys(want).map((k) => [k, r[k]]));
  const dry = await collectGarbage(store, new Uploads(s.root, store.pool), { graceMs: 0, now: later, dryRun: true });
  assert.deepEqual(pick(dry as unknown as Record<string, unknown>), want, 'the dry run');
  assert.deepEqual(dry.blobs, [orphan]);
  assert.equal((await readdir(join(s.root, 'uploads'))).length, 1, 'a dry run removes nothing');
  const r = await collectGarbage(store, new Uploads(s.root, store.pool), { graceMs: 0, now: later });
  assert.deepEqual(pick(r as unknown as Record<string, unknown>), want);
  assert.deepEqual(await readdir(join(s.root, 'uploads')), []);
  assert.deepEqual((await verifyRegistry(s.root)).problems, []);
});
