/**
 * The cap on open upload sessions (`--max-upload-sessions`): 429 TOOMANYREQUESTS at the limit,
 * places given back by every way a session ends (cancel, close, wrong digest, expiry), sessions of
 * a previous run counted after a restart, and requests that leave no session behind (monolithic
 * POST, a mount that succeeds) still served at the limit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { parseDigest } from '../oci/digest.js';
import { putBlob, request, sha256, spawnServer, specError, startTestServer, type Res } from '../test-support/serve.js';
import { tempDir } from '../test-support/tmp.js';
import { ServeError } from './errors.js';
import { registryPool } from './repo-store.js';
import { Uploads } from './uploads.js';

const OCTET = { 'content-type': 'application/octet-stream' };

const post = (base: string, name: string, query = ''): Promise<Res> => request(`${base}/v2/${name}/blobs/uploads/${query}`, { method: 'POST', headers: { 'content-length': 0 } });

async function session(base: string, name: string): Promise<string> {
  const r = await post(base, name);
  assert.equal(r.status, 202, r.text);
  return String(r.headers.location);
}

function assertCapped(r: Res, max: number): void {
  assert.equal(r.status, 429, r.text);
  const e = specError(r);
  assert.equal(e.code, 'TOOMANYREQUESTS');
  assert.equal(typeof e.detail, 'string');
  assert.doesNotMatch(String(e.detail), /\n/, 'one line');
  assert.match(String(e.detail), new RegExp(`--max-upload-sessions ${max}\\b`), 'names the limit');
  assert.match(String(e.detail), /finish \(PUT\) or cancel \(DELETE\).*raise --max-upload-sessions/, 'names the fix');
}

const sessionsOnDisk = async (root: string): Promise<number> => (await readdir(join(root, 'uploads')).catch(() => [])).length;

test('at --max-upload-sessions a POST is 429 TOOMANYREQUESTS; cancelling or completing a session frees a place', async (t) => {
  const s = await startTestServer(t, { maxUploadSessions: 2 });
  const a = await session(s.url, 'cap');
  const b = await session(s.url, 'cap');
  assertCapped(await post(s.url, 'cap'), 2);
  assertCapped(await post(s.url, 'other/repo'), 2); // the limit is the server's, not a repository's
  assert.equal(await sessionsOnDisk(s.root), 2, 'a refused POST makes no folder');

  assert.equal((await request(`${s.url}${a}`, { method: 'DELETE' })).status, 204);
  const c = await session(s.url, 'cap'); // the cancelled one's place
  assertCapped(await post(s.url, 'cap'), 2);

  assert.equal((await request(`${s.url}${b}`, { method: 'PATCH', body: 'bytes of b', headers: OCTET })).status, 202);
  const put = await request(`${s.url}${b}?digest=${sha256('bytes of b')}`, { method: 'PUT', headers: { 'content-length': 0 } });
  assert.equal(put.status, 201, put.text);
  await session(s.url, 'cap'); // the completed one's place
  assertCapped(await post(s.url, 'cap'), 2);

  // A wrong digest at the close ends the session too.
  const wrong = await request(`${s.url}${c}?digest=${sha256('something else')}`, { method: 'PUT', body: 'bytes of c', headers: OCTET });
  assert.equal(wrong.status, 400);
  await session(s.url, 'cap');
  assertCapped(await post(s.url, 'cap'), 2);
  assert.equal(await sessionsOnDisk(s.root), 2);
});

test('at the limit, a monolithic POST and a mount that succeeds still work (they leave no session); a mount that falls back to a session is 429', async (t) => {
  const s = await startTestServer(t, { maxUploadSessions: 1 });
  const before = await putBlob(s.url, 'src/repo', 'mounted bytes');
  await session(s.url, 'dst');
  assertCapped(await post(s.url, 'dst'), 1);
  const digest = await putBlob(s.url, 'dst', 'monolithic at the limit'); // throws unless 201
  assert.equal((await request(`${s.url}/v2/dst/blobs/${digest}`)).text, 'monolithic at the limit');
  const mounted = await post(s.url, 'dst', `?mount=${before}&from=src/repo`);
  assert.equal(mounted.status, 201, mounted.text);
  assert.equal((await request(`${s.url}/v2/dst/blobs/${before}`)).text, 'mounted bytes');
  assertCapped(await post(s.url, 'dst', `?mount=${sha256('not here')}&from=src/repo`), 1);
  const failed = await request(`${s.url}/v2/dst/blobs/uploads/?digest=${sha256('other')}`, { method: 'POST', body: 'not other', headers: OCTET });
  assert.equal(failed.status, 400, 'a monolithic POST with a wrong digest');
  assert.equal(await sessionsOnDisk(s.root), 1, 'none of them left a session behind');
  assertCapped(await post(s.url, 'dst'), 1);
});

test('sessions that expire and are swept give their places back', async (t) => {
  const s = await startTestServer(t, { maxUploadSessions: 2 });
  const old = await session(s.url, 'exp');
  await session(s.url, 'exp');
  assertCapped(await post(s.url, 'exp'), 2);
  const dir = join(s.root, 'uploads', old.split('/').pop()!);
  const past = new Date(Date.now() - 3 * 24 * 3600_000);
  for (const f of ['data', 'info.json', '']) await utimes(join(dir, f), past, past);
  assert.equal((await s.collect()).uploadsRemoved, 1);
  await session(s.url, 'exp');
  assertCapped(await post(s.url, 'exp'), 2);
});

test('sessions left on disk by a previous run count against the limit after a restart', async (t) => {
  const root = join(await tempDir(t), 'root');
  const flags = ['--max-upload-sessions', '2'];
  const p1 = await spawnServer(t, root, flags);
  const a = await session(p1.url, 'kept');
  await session(p1.url, 'kept');
  assertCapped(await post(p1.url, 'kept'), 2);
  assert.equal(await p1.stop(), 0);
  const p2 = await spawnServer(t, root, flags);
  assertCapped(await post(p2.url, 'kept'), 2);
  assert.equal((await request(`${p2.url}${a}`, { method: 'DELETE' })).status, 204, 'a session of the previous run, cancelled');
  await session(p2.url, 'kept');
  assertCapped(await post(p2.url, 'kept'), 2);
  assert.equal(await p2.stop(), 0);
});

test('the count stays that of the folders on disk when removals race (two cancels, a sweep, a failed close)', async (t) => {
  const root = await tempDir(t);
  const uploads = new Uploads(root, registryPool(root), { maxSessions: 3, ttlMs: 60_000 });
  t.after(() => uploads.close());
  const capped = (e: unknown): boolean => e instanceof ServeError && e.status === 429 && e.code === 'TOOMANYREQUESTS';
  const [a, b, c] = [await uploads.create('r'), await uploads.create('r'), await uploads.create('r')];
  await assert.rejects(uploads.create('r'), capped);
  await Promise.all([uploads.cancel(a), uploads.cancel(a)]);
  assert.equal(await uploads.countSessions(), 2);
  // A cancel and a sweep that finds every session expired, at once.
  await Promise.all([uploads.cancel(b), uploads.sweep(Date.now() + 120_000)]);
  assert.equal(await uploads.countSessions(), 0);
  assert.equal(await sessionsOnDisk(root), 0);
  await uploads.cancel(c); // already swept
  assert.equal(await uploads.countSessions(), 0);
  const kept = [await uploads.create('r'), await uploads.create('r'), await uploads.create('r')];
  await assert.rejects(uploads.create('r'), capped);
  const transient = await uploads.create('r', { transient: true }); // its request removes it
  assert.equal(await uploads.countSessions(), 4, 'counted while it exists');
  await uploads.append(transient, Readable.from([Buffer.from('x')]), { location: 'l' });
  const bad = sha256('y');
  await assert.rejects(uploads.complete(transient, bad, parseDigest(bad), 'l'), (e: unknown) => (e as ServeError).code === 'DIGEST_INVALID');
  assert.equal(await uploads.countSessions(), 3);
  await uploads.cancel(kept[0]!);
  assert.equal((await uploads.create('r')).name, 'r');
  assert.equal(await uploads.countSessions(), await sessionsOnDisk(root));
});
