import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, stat, writeFile, chmod } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { LocalStore } from './store.js';
import { prune } from './prune.js';
import { verifyStore } from './verify.js';
import { readIndex } from './index-file.js';
import { digestBytes } from '../oci/digest.js';
import { canonicalJsonBytes } from '../oci/canonical-json.js';
import { OCI_MANIFEST } from '../oci/media-types.js';
import { hasErrorCode } from '../errors.js';
import { tempDir } from '../test-support/tmp.js';

const blob = (s: string | Buffer) => ({ mediaType: 'application/octet-stream', digest: digestBytes(s), size: Buffer.byteLength(s) });

async function putModel(store: LocalStore, layers: string[]) {
  const cfg = Buffer.from('{}');
  const cfgDesc = { ...blob(cfg), mediaType: 'application/vnd.oci.empty.v1+json' };
  await store.push(cfgDesc, cfg);
  const descs = [];
  for (const l of layers) {
    const d = blob(l);
    await store.push(d, Buffer.from(l));
    descs.push(d);
  }
  const bytes = canonicalJsonBytes({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: cfgDesc, layers: descs });
  const m = { mediaType: OCI_MANIFEST, digest: digestBytes(bytes), size: bytes.length };
  await store.push(m, bytes);
  return { manifest: m, layers: descs, config: cfgDesc };
}

test('LocalStore writes an OCI image layout', async (t) => {
  const root = await tempDir(t);
  const store = await LocalStore.open(root);
  t.after(() => store.close());
  assert.deepEqual(JSON.parse(await readFile(join(root, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
  assert.deepEqual((await readIndex(root)).manifests, []);
  const d = blob('hello');
  await store.push(d, Readable.from([Buffer.from('hel'), Buffer.from('lo')]));
  assert.equal(await readFile(join(root, 'blobs', 'sha256', d.digest.slice(7)), 'utf8'), 'hello');
  assert.equal((await stat(store.blobs.path(d.digest))).mode & 0o777, 0o444);
  assert.ok(await store.exists(d));
  assert.ok(!(await store.exists(blob('nope'))));
  const chunks: Buffer[] = [];
  for await (const c of await store.fetch(d)) chunks.push(c as Buffer);
  assert.equal(Buffer.concat(chunks).toString(), 'hello');
  await assert.rejects(store.fetch(blob('absent')), (e: unknown) => hasErrorCode(e, 'NOT_FOUND'));
});

test('push verifies: wrong bytes leave nothing behind', async (t) => {
  const root = await tempDir(t);
  const store = await LocalStore.open(root);
  t.after(() => store.close());
  const d = blob('expected');
  await assert.rejects(store.push(d, Buffer.from('tampered')), (e: unknown) => hasErrorCode(e, 'DIGEST_MISMATCH'));
  await assert.rejects(store.push(d, Buffer.from('expected+more')), (e: unknown) => hasErrorCode(e, 'SIZE_MISMATCH'));
  await assert.rejects(store.push({ ...d, digest: 'sha256:../../etc' }, Buffer.from('x')), (e: unknown) => hasErrorCode(e, 'INVALID_DIGEST'));
  // Streams too, small (verified in memory) and large (through the verifier): too many bytes fail
  // at once, a wrong last byte at the end; the temp files go.
  await assert.rejects(store.push(d, Readable.from([Buffer.from('expec'), Buffer.from('ted+more')])), (e: unknown) => hasErrorCode(e, 'SIZE_MISMATCH'));
  await assert.rejects(store.push(d, Readable.from([Buffer.from('expec'), Buffer.from('teD')])), (e: unknown) => hasErrorCode(e, 'DIGEST_MISMATCH'));
  const big = Buffer.alloc(3 * 1024 * 1024, 7);
  const bigDesc = blob(big);
  const flipped = Buffer.from(big);
  flipped[flipped.length - 1] = 8;
  await assert.rejects(store.push(bigDesc, Readable.from([flipped.subarray(0, 1 << 20), flipped.subarray(1 << 20)])), (e: unknown) => hasErrorCode(e, 'DIGEST_MISMATCH'));
  assert.ok(!(await store.exists(bigDesc)));
  assert.deepEqual((await readdir(join(root, 'ingest'))).filter((n) => n !== 'partial'), [], 'no temp file left');
  assert.ok(!(await store.exists(d)));
  assert.deepEqual(await readdir(join(root, 'blobs', 'sha256')), []);
  assert.deepEqual(await readdir(store.blobs.ingestDir), []);
});

test('tag, resolve, list and untag', async (t) => {
  const root = await tempDir(t);
  const store = await LocalStore.open(root);
  t.after(() => store.close());
  const { manifest } = await putModel(store, ['a', 'b']);
  await store.tag(manifest, 'models/x:v1');
  await store.tag(manifest, 'localhost:5000/models/x:v2');
  assert.equal((await store.resolve('models/x:v1')).digest, manifest.digest);
  assert.equal((await store.resolve(`models/x@${manifest.digest}`)).digest, manifest.digest);
  assert.deepEqual((await store.list()).map((e) => e.reference), ['localhost:5000/models/x:v2', 'models/x:v1']);
  const idx = JSON.parse(await readFile(join(root, 'index.json'), 'utf8'));
  assert.equal(idx.manifests[1].annotations['org.opencontainers.image.ref.name'], 'models/x:v1');
  await store.untag('models/x:v1');
  await assert.rejects(store.resolve('models/x:v1'), (e: unknown) => hasErrorCode(e, 'NOT_FOUND'));
  await assert.rejects(store.untag('models/x:v1'), (e: unknown) => hasErrorCode(e, 'NOT_FOUND'));
  await assert.rejects(store.tag(blob('not stored'), 'y:1'), (e: unknown) => hasErrorCode(e, 'NOT_FOUND'));
});

test('a manifest whose blobs are missing cannot be tagged', async (t) => {
  const root = await tempDir(t);
  const store = await LocalStore.open(root);
  t.after(() => store.close());
  const layer = blob('never pushed');
  const cfg = blob('{}');
  await store.push(cfg, Buffer.from('{}'));
  const bytes = canonicalJsonBytes({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: cfg, layers: [layer] });
  const m = { mediaType: OCI_MANIFEST, digest: digestBytes(bytes), size: bytes.length };
  await store.push(m, bytes);
  await assert.rejects(store.tag(m, 'broken:1'), (e: unknown) => hasErrorCode(e, 'NOT_FOUND') && /missing/.test((e as Error).message));
});

test('concurrent tags all land in index.json (lock + temp + rename)', async (t) => {
  const root = await tempDir(t);
  const stores = await Promise.all([1, 2, 3].map(() => LocalStore.open(root)));
  t.after(() => stores.forEach((s) => s.close()));
  const { manifest } = await putModel(stores[0]!, ['x']);
  await Promise.all(Array.from({ length: 30 }, (_, i) => stores[i % 3]!.tag(manifest, `m:t${i}`)));
  assert.equal((await stores[1]!.list()).length, 30);
});

test('prune deletes unreferenced blobs but spares those a live writer holds', async (t) => {
  const root = await tempDir(t);
  const writer = await LocalStore.open(root);
  const other = await LocalStore.open(root);
  t.after(() => other.close());
  const kept = await putModel(writer, ['kept-layer']);
  await writer.tag(kept.manifest, 'kept:1');
  const pending = blob('being built');
  await writer.push(pending, Buffer.from('being built'));
  await writeFile(join(other.blobs.ingestDir, '999999999-dead-temp'), 'partial');
  const r1 = await prune(other);
  assert.equal(r1.removed.length, 0);
  assert.equal(r1.keptInUse, 1);
  assert.equal(r1.removedTempFiles, 1);
  writer.close(); // the build ended without tagging
  const r2 = await prune(other);
  assert.deepEqual(r2.removed.map((b) => b.digest), [pending.digest]);
  assert.ok(await other.exists(kept.layers[0]!));
  await other.untag('kept:1');
  const dry = await prune(other, { dryRun: true });
  assert.equal(dry.removed.length, 3);
  assert.ok(await other.exists(kept.manifest));
  assert.equal((await prune(other)).removed.length, 3);
  assert.deepEqual(await readdir(join(root, 'blobs', 'sha256')), []);
});

test('verify reports corrupt and missing blobs by digest', async (t) => {
  const root = await tempDir(t);
  const store = await LocalStore.open(root);
  t.after(() => store.close());
  const { manifest, layers } = await putModel(store, ['good', 'will rot', 'will vanish']);
  await store.tag(manifest, 'v:1');
  assert.deepEqual((await verifyStore(store)).problems, []);
  const rot = store.blobs.path(layers[1]!.digest);
  await chmod(rot, 0o644);
  await writeFile(rot, 'will r0t');
  const { unlink } = await import('node:fs/promises');
  await unlink(store.blobs.path(layers[2]!.digest));
  const r = await verifyStore(store, ['v:1']);
  assert.equal(r.checked, 5);
  assert.deepEqual(
    r.problems.map((p) => [p.digest, p.problem]).sort(),
    [[layers[1]!.digest, 'corrupt'], [layers[2]!.digest, 'missing']].sort(),
  );
});

test('prune reports every byte it frees: abandoned partial downloads and dead temp files too, dry run alike', async (t) => {
  const root = await tempDir(t);
  const store = await LocalStore.open(root);
  t.after(() => store.close());
  await putModel(store, ['unreferenced']); // config, layer, manifest: 3 blobs nothing names
  store.close(); // its lease goes: they are prunable
  const { mkdir, stat: statFile } = await import('node:fs/promises');
  const partialDir = join(root, 'ingest', 'partial');
  await mkdir(partialDir, { recursive: true });
  const partial = join(partialDir, `sha256-${'ab'.repeat(32)}`);
  await writeFile(partial, Buffer.alloc(3 * 1024 * 1024)); // a pull killed mid-download, no claim left
  await writeFile(join(root, 'ingest', '999999999-dead-temp'), Buffer.alloc(1000));
  const dry = await prune(store, { dryRun: true });
  assert.equal(dry.removed.length, 3);
  assert.equal(dry.removedPartials, 1);
  assert.equal(dry.removedTempFiles, 2);
  assert.equal(dry.tempBytes, 3 * 1024 * 1024 + 1000);
  assert.equal(dry.reclaimedBytes, dry.blobBytes + dry.tempBytes);
  assert.ok(dry.blobBytes > '{}unreferenced'.length, 'the manifest counts too');
  assert.ok((await statFile(partial)).isFile(), 'a dry run deletes nothing');
  const r = await prune(store);
  assert.deepEqual({ ...r, removed: r.removed.length }, { ...dry, removed: 3 });
  await assert.rejects(statFile(partial));
  assert.deepEqual(await readdir(join(root, 'ingest')), ['partial']);
});

test('a copy into the store holds every blob of the manifest in its lease (one write) before it fetches the first', async (t) => {
  const { copyGraph } = await import('../graph/copy.js');
  const src = await LocalStore.open(await tempDir(t));
  const root = await tempDir(t);
  const dst = await LocalStore.open(root);
  t.after(() => (src.close(), dst.close()));
  const model = await putModel(src, ['layer one', 'layer two', 'layer three']);
  let leasedAtFirstFetch: string[] | undefined;
  await copyGraph(src, dst, model.manifest, {
    verb: 'downloading',
    onEvent: (ev) => {
      if (ev.state !== 'downloading' || leasedAtFirstFetch) return;
      const dir = join(root, 'leases');
      leasedAtFirstFetch = readdirSync(dir).flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean));
    },
  });
  const children = [model.config, ...model.layers].map((d) => d.digest);
  assert.deepEqual([...(leasedAtFirstFetch ?? [])].sort(), [...children].sort(), 'each blob once, all before the first transfer');
  // A second copy of the same blobs (already held) adds no line.
  await copyGraph(src, dst, model.manifest, { revisitExistingRoot: true });
  const dir = join(root, 'leases');
  assert.equal(readdirSync(dir).flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean)).length, children.length);
  // And a concurrent prune spares them, untagged as they are.
  const other = await LocalStore.open(root);
  t.after(() => other.close());
  assert.equal((await prune(other)).removed.length, 0);
});

test('pushFrom with `checked` (the caller just found the blob missing) writes it without asking again; without, a stored blob is skipped', async (t) => {
  const store = await LocalStore.open(await tempDir(t));
  t.after(() => store.close());
  const bytes = Buffer.from('fetched once');
  const d = blob(bytes);
  let opened = 0;
  const open = async () => (opened++, Readable.from([bytes]));
  await store.pushFrom(d, open, { checked: true });
  assert.deepEqual(await readFile(store.blobs.path(d.digest)), bytes);
  await store.pushFrom(d, open);
  assert.equal(opened, 1, 'stored: not fetched again');
  await store.pushFrom(d, open, { checked: true });
  assert.equal(opened, 2, 'told it was missing: fetched, and stored again harmlessly');
  assert.deepEqual(await readFile(store.blobs.path(d.digest)), bytes);
});
