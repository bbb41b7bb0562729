/**
 * The store trusts a blob only while its file is the one it verified (issue 14, item 7): a file
 * changed since (a byte flipped, edited through a hard link) counts as missing, and writing the
 * blob again repairs it; metadata-only changes (a hard link, a copy of the store) cost a rehash.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, chmod, link, readFile, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalStore } from './store.js';
import { VerifiedBlobs, identityOf, verifiedLogPath } from './verified.js';
import { REHASH_MAX_BYTES } from './blobs.js';
import { digestBytes } from '../oci/digest.js';
import { tempDir } from '../test-support/tmp.js';

const blob = (b: Buffer) => ({ mediaType: 'application/octet-stream', digest: digestBytes(b), size: b.length });

/** Changes one byte of a stored blob in place (same inode, same size), as an editor on a hard link would. */
async function flipByte(path: string, at = 0): Promise<void> {
  await chmod(path, 0o644);
  const bytes = await readFile(path);
  bytes[at] = bytes[at]! ^ 0xff;
  await writeFile(path, bytes);
}

test('a blob whose file changed since it was stored is missing; pushing it again repairs the store', async (t) => {
  const root = await tempDir(t);
  const store = await LocalStore.open(root);
  t.after(() => store.close());
  const bytes = Buffer.from('weights of a small model');
  const d = blob(bytes);
  await store.push(d, bytes);
  assert.equal(await store.blobs.state(d), 'present');
  await flipByte(store.blobs.path(d.digest));
  assert.equal(await store.blobs.state(d), 'changed');
  assert.equal(await store.exists(d), false, 'a pull or copy fetches it again');
  await store.push(d, bytes);
  assert.deepEqual(await readFile(store.blobs.path(d.digest)), bytes, 'push rewrote the blob');
  assert.equal(await store.exists(d), true);
  // Truncated: the wrong size is never the blob.
  await chmod(store.blobs.path(d.digest), 0o644);
  await writeFile(store.blobs.path(d.digest), bytes.subarray(1));
  assert.equal(await store.exists(d), false);
});

test('a blob the store never recorded (older store, another tool) is rehashed once, then trusted by its identity', async (t) => {
  const root = await tempDir(t);
  const first = await LocalStore.open(root);
  const bytes = Buffer.from('written before blobs were recorded');
  const d = blob(bytes);
  await first.push(d, bytes);
  first.close();
  await unlink(verifiedLogPath(root));
  const store = await LocalStore.open(root);
  t.after(() => store.close());
  assert.equal(await store.exists(d), true, 'intact: rehashed and found right');
  const id = identityOf(await stat(store.blobs.path(d.digest), { bigint: true }));
  assert.equal(await store.blobs.verified!.get(d.digest), id, 'and recorded');
  // Another blob, unrecorded and corrupt, is not trusted.
  const other = Buffer.from('another blob, flipped behind the store');
  const o = blob(other);
  await store.push(o, other);
  await flipByte(store.blobs.path(o.digest), 3);
  await unlink(verifiedLogPath(root));
  const fresh = await LocalStore.open(root);
  t.after(() => fresh.close());
  assert.equal(await fresh.exists(o), false);
  assert.equal(await fresh.exists(d), true, 'the intact one still is');
});

test('metadata-only changes (a hard link, a chmod) cost a rehash, not a download; a large rewritten blob is missing unread', async (t) => {
  const root = await tempDir(t);
  const store = await LocalStore.open(root);
  t.after(() => store.close());
  const bytes = Buffer.from('linked out of the store');
  const d = blob(bytes);
  await store.push(d, bytes);
  const outside = join(await tempDir(t), 'linked.bin');
  await link(store.blobs.path(d.digest), outside); // ctime moves
  assert.equal(await store.exists(d), true);
  assert.equal(await store.blobs.verified!.get(d.digest), identityOf(await stat(store.blobs.path(d.digest), { bigint: true })), 're-recorded');

  // Over REHASH_MAX_BYTES, a file whose mtime moved is not read to find out: pull or build rewrite it.
  const big = Buffer.alloc(REHASH_MAX_BYTES + 1, 1);
  const b = blob(big);
  await store.push(b, big);
  assert.equal(await store.exists(b), true);
  const p = store.blobs.path(b.digest);
  const later = new Date(Date.now() + 5000);
  await utimes(p, later, later);
  assert.equal(await store.blobs.state(b), 'changed');
  await store.push(b, big); // what a pull does with a blob it finds missing
  assert.equal(await store.blobs.state(b), 'present');
});

test('tag refuses a manifest whose blob changed on disk, naming it (CORRUPT, not "missing")', async (t) => {
  const { canonicalJsonBytes } = await import('../oci/canonical-json.js');
  const { OCI_MANIFEST } = await import('../oci/media-types.js');
  const { hasErrorCode } = await import('../errors.js');
  const root = await tempDir(t);
  const store = await LocalStore.open(root);
  t.after(() => store.close());
  const cfg = Buffer.from('{}');
  const layer = Buffer.from('layer bytes');
  await store.push(blob(cfg), cfg);
  await store.push(blob(layer), layer);
  const m = canonicalJsonBytes({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: blob(cfg), layers: [blob(layer)] });
  const md = { mediaType: OCI_MANIFEST, digest: digestBytes(m), size: m.length };
  await store.push(md, m);
  await flipByte(store.blobs.path(blob(layer).digest));
  await assert.rejects(store.tag(md, 'm:1'), (e: unknown) => hasErrorCode(e, 'CORRUPT') && (e as Error).message.includes(blob(layer).digest) && /changed on disk/.test((e as Error).message));
});

test('a stored manifest whose layer changed does not count as present: a copy into the store (an index pulled) fetches the layer again', async (t) => {
  const { canonicalJsonBytes } = await import('../oci/canonical-json.js');
  const { OCI_INDEX, OCI_MANIFEST } = await import('../oci/media-types.js');
  const { copyGraph } = await import('../graph/copy.js');
  const src = await LocalStore.open(await tempDir(t));
  const dst = await LocalStore.open(await tempDir(t));
  t.after(() => (src.close(), dst.close()));
  const cfg = Buffer.from('{}');
  const layer = Buffer.from('a platform layer');
  const m = canonicalJsonBytes({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: blob(cfg), layers: [blob(layer)] });
  const md = { mediaType: OCI_MANIFEST, digest: digestBytes(m), size: m.length };
  const x = canonicalJsonBytes({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [md] });
  const xd = { mediaType: OCI_INDEX, digest: digestBytes(x), size: x.length };
  for (const s of [src, dst]) for (const [d, b] of [[blob(cfg), cfg], [blob(layer), layer], [md, m], [xd, x]] as const) await s.push(d, b);
  assert.equal(await dst.exists(md), true);
  await flipByte(dst.blobs.path(blob(layer).digest));
  assert.equal(await dst.exists(md), false, 'its layer changed');
  const stats = await copyGraph(src, dst, xd, { revisitExistingRoot: true });
  assert.equal(stats.transferred, 2, 'the layer, then the manifest again');
  assert.deepEqual(await readFile(dst.blobs.path(blob(layer).digest)), layer);
});

test('the verified log: whole lines only, appends of others seen on a miss, a bloated log compacted, a compaction elsewhere followed', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'cache', 'verified-blobs');
  const s = await stat(dir, { bigint: true });
  const a = new VerifiedBlobs(file);
  const b = new VerifiedBlobs(file);
  t.after(() => (a.close(), b.close()));
  const d = (i: number) => `sha256:${String(i).padStart(64, '0')}`;
  a.record(d(1), s);
  await new Promise((r) => setImmediate(r));
  assert.equal(await b.get(d(1)), identityOf(s), "another process's record, in the log by the end of the turn of the loop");
  a.record(d(2), s);
  a.flush();
  assert.equal(await b.get(d(2)), identityOf(s), 'appended after b read the log: found on the miss');
  await appendFile(file, `${d(3)} 1:2:3`); // a line still being written
  assert.equal(await b.get(d(3)), undefined);
  await appendFile(file, ':4:5\n');
  assert.equal(await b.get(d(3)), '1:2:3:4:5');
  await a.compact((digest) => digest !== d(2)); // prune: d(2) is gone
  assert.equal((await readFile(file, 'utf8')).split('\n').length - 1, 2);
  a.record(d(4), s);
  assert.equal(await b.get(d(4)), identityOf(s), 'b follows the new file');
  // Many rewrites of one blob: the next process to load the log compacts it.
  await appendFile(file, Array.from({ length: 12_000 }, () => `${d(1)} 9:9:9:9:9\n`).join(''));
  const c = new VerifiedBlobs(file);
  assert.equal(await c.get(d(1)), '9:9:9:9:9');
  assert.equal((await readFile(file, 'utf8')).split('\n').length - 1, 3, 'one line per digest');
});

test('tag reuses the bytes of a manifest just pushed, yet a manifest file changed since is refused, and bytes not matching the digest are never kept', async (t) => {
  const { canonicalJsonBytes } = await import('../oci/canonical-json.js');
  const { OCI_MANIFEST } = await import('../oci/media-types.js');
  const { hasErrorCode } = await import('../errors.js');
  const store = await LocalStore.open(await tempDir(t));
  t.after(() => store.close());
  const cfg = Buffer.from('{}');
  await store.push(blob(cfg), cfg);
  const m = canonicalJsonBytes({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: blob(cfg), layers: [] });
  const md = { mediaType: OCI_MANIFEST, digest: digestBytes(m), size: m.length };
  await store.push(md, m);
  await store.tag(md, 'm:1');
  // Pushed again (already stored: the content is not read) with other bytes: they are not kept.
  const other = canonicalJsonBytes({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: blob(cfg), layers: [], annotations: { not: 'these bytes' } });
  await store.push(md, other);
  const read = await store.readManifest(md);
  assert.equal(read.kind === 'manifest' && read.manifest.annotations, undefined, 'the stored manifest, not the bytes given');
  await flipByte(store.blobs.path(md.digest), 5);
  await assert.rejects(store.tag(md, 'm:2'), (e: unknown) => hasErrorCode(e, 'CORRUPT') && (e as Error).message.includes(md.digest));
});
