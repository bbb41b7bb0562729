/**
 * Upload sessions below HTTP: hashing inline and on a worker (from the start, switched to in the
 * middle of a body, after a restart with a kept prefix), the digest check at close, and expiry.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, readdir, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { parseDigest } from '../oci/digest.js';
import { tempDir } from '../test-support/tmp.js';
import { ServeError } from './errors.js';
import { registryPool } from './repo-store.js';
import { Uploads } from './uploads.js';

const sha = (b: Buffer, alg = 'sha256') => `${alg}:${createHash(alg).update(b).digest('hex')}`;
const chunks = (b: Buffer, size: number): Readable => Readable.from(Array.from({ length: Math.ceil(b.length / size) }, (_, i) => b.subarray(i * size, (i + 1) * size)));

async function setup(t: Parameters<typeof tempDir>[0], opts: ConstructorParameters<typeof Uploads>[2] = {}) {
  const root = await tempDir(t);
  const pool = registryPool(root);
  const uploads = new Uploads(root, pool, opts);
  t.after(() => uploads.close());
  return { root, pool, uploads };
}

for (const [label, opts, length, worker] of [
  ['inline (no worker free)', { maxFollowers: 0, followMinBytes: 64 * 1024 }, true, [false, false]],
  ['on a worker from the start (Content-Length over the threshold)', { maxFollowers: 2, followMinBytes: 64 * 1024 }, true, [true, true]],
  ['inline, then on a worker from the middle of a streamed body', { maxFollowers: 2, followMinBytes: 600 * 1024 }, false, [false, true]],
] as const) {
  test(`an upload hashed ${label} closes with the right digest and lands in the pool`, async (t) => {
    const { root, pool, uploads } = await setup(t, opts);
    const blob = randomBytes(1024 * 1024 + 17);
    const s = await uploads.create('a/b');
    const loc = '/v2/a/b/blobs/uploads/x';
    const half = 400_000;
    assert.equal(await uploads.append(s, chunks(blob.subarray(0, half), 65536), { start: 0, ...(length ? { length: half } : {}), location: loc }), half);
    assert.equal(s.hash?.follower, worker[0]);
    assert.equal(await uploads.append(s, chunks(blob.subarray(half), 65536), { start: half, location: loc }), blob.length);
    assert.equal(s.hash?.follower, worker[1]);
    const d = sha(blob);
    assert.equal(await uploads.complete(s, d, parseDigest(d), loc), blob.length);
    assert.equal(uploads.rehashed, 0, 'the running hash was right: no second pass over the file');
    assert.deepEqual(await readFile(pool.path(d)), blob);
    assert.deepEqual(await readdir(join(root, 'uploads')), []);
  });
}

test('a worker hash takes the written batches without a copy: an HTTP body\'s chunks own their memory and are moved', async (t) => {
  const { pool, uploads } = await setup(t, { maxFollowers: 1, followMinBytes: 1024 * 1024 });
  const blob = randomBytes(48 * 1024 * 1024 + 5);
  // Each chunk its own ArrayBuffer, as node:http hands a body over; more than the worker may hold
  // at once (8 MiB), so the body pauses for it as well as for the file.
  const own = Array.from({ length: Math.ceil(blob.length / 65536) }, (_, i) => Buffer.from(blob.subarray(i * 65536, (i + 1) * 65536)));
  const s = await uploads.create('moved');
  assert.equal(await uploads.append(s, Readable.from(own), { start: 0, length: blob.length, location: 'l' }), blob.length);
  assert.equal(s.hash?.follower, true);
  assert.ok(own.filter((c) => c.length === 0).length > own.length / 2, 'the chunks were moved to the worker (detached here)');
  const d = sha(blob);
  assert.equal(await uploads.complete(s, d, parseDigest(d), 'l'), blob.length);
  assert.equal(uploads.rehashed, 0);
  assert.deepEqual(await readFile(pool.path(d)), blob);
});

test('a streamed body (no length) switches to the worker in its middle, with batches in flight, and hashes right', async (t) => {
  const { pool, uploads } = await setup(t, { maxFollowers: 1, followMinBytes: 4 * 1024 * 1024 });
  const blob = randomBytes(24 * 1024 * 1024 + 3);
  const own = Array.from({ length: Math.ceil(blob.length / 65536) }, (_, i) => Buffer.from(blob.subarray(i * 65536, (i + 1) * 65536)));
  const s = await uploads.create('switch');
  assert.equal(await uploads.append(s, Readable.from(own), { start: 0, location: 'l' }), blob.length);
  assert.equal(s.hash?.follower, true, 'switched at 4 MiB');
  const moved = own.filter((c) => c.length === 0).length;
  assert.ok(moved > own.length / 2, 'the batches written after the switch were moved to the worker');
  const d = sha(blob);
  assert.equal(await uploads.complete(s, d, parseDigest(d), 'l'), blob.length);
  assert.equal(uploads.rehashed, 0, 'read back up to the switch, then given every later batch: no second pass');
  assert.deepEqual(await readFile(pool.path(d)), blob);
});

test('after a restart the kept prefix is hashed again (on a worker, or inline), or the whole file for sha512', async (t) => {
  const { root, pool, uploads } = await setup(t);
  const blob = randomBytes(600_000);
  const started = [];
  for (let i = 0; i < 3; i++) {
    const s = await uploads.create('r');
    await uploads.append(s, chunks(blob.subarray(0, 250_000), 65536), { location: 'l' });
    started.push(s.id);
  }
  uploads.close(); // the process goes away; the sessions stay on disk
  for (const [i, followMinBytes, worker] of [
    [0, 100_000, true],
    [1, 10_000_000, false],
  ] as const) {
    const again = new Uploads(root, pool, { maxFollowers: 2, followMinBytes });
    t.after(() => again.close());
    const s = await again.open('r', started[i]!);
    assert.equal(await again.size(s), 250_000);
    await again.append(s, chunks(blob.subarray(250_000), 65536), { start: 250_000, length: 350_000, location: 'l' });
    assert.equal(s.hash?.follower, worker);
    const d = sha(blob);
    assert.equal(await again.complete(s, d, parseDigest(d), 'l'), blob.length);
    assert.equal(again.rehashed, 0);
  }
  const last = new Uploads(root, pool);
  t.after(() => last.close());
  await assert.rejects(last.open('other', started[2]!), (e: unknown) => (e as ServeError).code === 'BLOB_UPLOAD_UNKNOWN', 'a session belongs to its repository');
  const s = await last.open('r', started[2]!);
  const bad = sha(Buffer.from('x'), 'sha512');
  await assert.rejects(last.complete(s, bad, parseDigest(bad), 'l'), (e: unknown) => (e as ServeError).code === 'DIGEST_INVALID');
  await assert.rejects(last.open('r', started[2]!), 'a failed close ends the session');
  const fresh = await last.create('r');
  await last.append(fresh, chunks(blob, 65536), { location: 'l' });
  const d512 = sha(blob, 'sha512');
  assert.equal(await last.complete(fresh, d512, parseDigest(d512), 'l'), blob.length);
  assert.equal(last.rehashed, 2, 'sha512 is not what the running hash computes: the file is hashed again');
  assert.deepEqual(await readFile(pool.path(d512)), blob);
});

test('sweep removes sessions untouched for the time-to-live, by their files, and keeps the others', async (t) => {
  const { root, uploads } = await setup(t, { ttlMs: 60_000 });
  const old = await uploads.create('a');
  const young = await uploads.create('a');
  const past = new Date(Date.now() - 120_000);
  for (const f of ['', 'data', 'info.json']) await utimes(join(root, 'uploads', old.id, f), past, past);
  assert.equal(await uploads.sweep(), 1);
  assert.deepEqual(await readdir(join(root, 'uploads')), [young.id]);
  await assert.rejects(uploads.open('a', old.id));
  assert.equal((await uploads.open('a', young.id)).id, young.id);
});
