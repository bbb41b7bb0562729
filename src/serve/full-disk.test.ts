/**
 * A full disk (a real 8 MiB tmpfs; root only, else skipped with the reason): an upload that does
 * not fit is answered at once with 507 (not left hanging until the idle time-out), its session's
 * bytes are freed, and the server goes on working. Without root, /dev/full (every write ENOSPC)
 * stands in for the disk.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, rm, symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { OCI_MANIFEST, putBlob, putImage, request, sha256, specError, startTestServer, type Res } from '../test-support/serve.js';
import { mountTmpfs, type Tmpfs } from '../test-support/tmpfs.js';
import { startServer, type RunningServer } from './server.js';

const MiB = 1024 * 1024;
const OCTET = { 'content-type': 'application/octet-stream' };

async function fullDiskServer(t: Parameters<typeof mountTmpfs>[0] & { skip(why: string): void }): Promise<{ s: RunningServer; fs: Tmpfs } | undefined> {
  const fs = await mountTmpfs(t, 8);
  if ('skip' in fs) {
    t.skip(fs.skip);
    return undefined;
  }
  // A short idle time-out: the old hang shows as a cut connection after 15 s, not a test stuck for 120 s.
  const s = await startServer({ root: join(fs.dir, 'root'), addr: '127.0.0.1:0', idleTimeoutMs: 15_000, minUploadRate: 0 });
  fs.before(() => s.close());
  return { s, fs };
}

/** Sends `body` (Content-Length) and resolves with the answer as soon as it comes, even while the body is still going. */
function sendLarge(url: string, method: string, body: Buffer): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false, headers: { ...OCTET, 'content-length': body.length } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        const b = Buffer.concat(parts);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b, text: b.toString('utf8'), json: () => JSON.parse(b.toString('utf8')) });
      });
      res.on('error', () => undefined);
    });
    req.on('error', reject); // after a response, the server's close is expected (Connection: close)
    req.on('response', () => req.off('error', reject).on('error', () => undefined));
    req.end(body);
  });
}

function assertOutOfSpace(r: Res, started: number): void {
  assert.ok(Date.now() - started < 10_000, `answered after ${Date.now() - started} ms`);
  assert.equal(r.status, 507, r.text);
  const e = specError(r);
  assert.equal(e.code, 'UNKNOWN');
  assert.match(e.message, /out of space/);
  assert.match(JSON.stringify(e.detail), /no space left on device/);
  assert.equal(r.headers.connection, 'close');
}

test('full disk: a PATCH that does not fit is 507 at once, its session freed; the server works on', async (t) => {
  const got = await fullDiskServer(t);
  if (!got) return;
  const { s, fs } = got;
  const post = await request(`${s.url}/v2/full/blobs/uploads/`, { method: 'POST', headers: { 'content-length': 0 } });
  assert.equal(post.status, 202);
  const loc = String(post.headers.location);
  const started = Date.now();
  assertOutOfSpace(await sendLarge(`${s.url}${loc}`, 'PATCH', randomBytes(20 * MiB)), started);

  // The session is gone with its bytes: nothing holds the disk until --upload-ttl.
  const st = await request(`${s.url}${loc}`);
  assert.equal(st.status, 404, st.text);
  assert.equal(specError(st).code, 'BLOB_UPLOAD_UNKNOWN');
  assert.deepEqual(await readdir(join(s.root, 'uploads')), []);
  assert.ok((await fs.free()) > 7 * MiB, `free: ${await fs.free()}`);

  // Healthy: new sessions, chunked and monolithic uploads work.
  const loc2 = String((await request(`${s.url}/v2/full/blobs/uploads/`, { method: 'POST', headers: { 'content-length': 0 } })).headers.location);
  const blob = randomBytes(2 * MiB);
  assert.equal((await request(`${s.url}${loc2}`, { method: 'PATCH', body: blob, headers: OCTET })).status, 202);
  assert.equal((await request(`${s.url}${loc2}?digest=${sha256(blob)}`, { method: 'PUT', headers: { 'content-length': 0 } })).status, 201);
  const small = await putBlob(s.url, 'full', 'after the full disk');
  assert.equal((await request(`${s.url}/v2/full/blobs/${small}`)).text, 'after the full disk');
});

test('full disk: a monolithic POST is 507 at once and leaves no session; a closing PUT with a body too', async (t) => {
  const got = await fullDiskServer(t);
  if (!got) return;
  const { s, fs } = got;
  const blob = randomBytes(12 * MiB);
  let started = Date.now();
  assertOutOfSpace(await sendLarge(`${s.url}/v2/full/blobs/uploads/?digest=${sha256(blob)}`, 'POST', blob), started);
  assert.deepEqual(await readdir(join(s.root, 'uploads')), []);

  const loc = String((await request(`${s.url}/v2/full/blobs/uploads/`, { method: 'POST', headers: { 'content-length': 0 } })).headers.location);
  started = Date.now();
  assertOutOfSpace(await sendLarge(`${s.url}${loc}?digest=${sha256(blob)}`, 'PUT', blob), started);
  assert.equal((await request(`${s.url}${loc}`)).status, 404);
  assert.ok((await fs.free()) > 7 * MiB);
  assert.equal((await request(`${s.url}/v2/full/blobs/uploads/`, { method: 'POST', headers: { 'content-length': 0 } })).status, 202);
});

test('full disk: a new session or a manifest that cannot be stored is 507 too (not 500); once space is freed they work', async (t) => {
  const got = await fullDiskServer(t);
  if (!got) return;
  const { s, fs } = got;
  const img = await putImage(s.url, 'full', 'v1');
  const filler = join(fs.dir, 'filler');
  await writeFile(filler, Buffer.alloc(16 * MiB)).catch(() => undefined); // fills what is left
  const post = await request(`${s.url}/v2/full/blobs/uploads/`, { method: 'POST', headers: { 'content-length': 0 } });
  assert.equal(post.status, 507, post.text);
  assert.equal(specError(post).message, 'registry out of space');
  const doc = { ...(JSON.parse(img.bytes.toString('utf8')) as object), annotations: { 'org.example.note': 'n'.repeat(8192) } };
  const manifest = await request(`${s.url}/v2/full/manifests/v2`, { method: 'PUT', body: JSON.stringify(doc), headers: { 'content-type': OCI_MANIFEST } });
  assert.equal(manifest.status, 507, manifest.text);
  await rm(filler);
  assert.equal((await request(`${s.url}/v2/full/blobs/uploads/`, { method: 'POST', headers: { 'content-length': 0 } })).status, 202);
  assert.equal((await request(`${s.url}/v2/full/manifests/v2`, { method: 'PUT', body: JSON.stringify(doc), headers: { 'content-type': OCI_MANIFEST } })).status, 201);
});

test('full disk without root: a session whose data file is /dev/full answers 507 at once and is removed', { skip: process.platform !== 'linux' && '/dev/full is Linux' }, async (t) => {
  const s = await startTestServer(t, { idleTimeoutMs: 15_000, minUploadRate: 0 });
  const loc = String((await request(`${s.url}/v2/full/blobs/uploads/`, { method: 'POST', headers: { 'content-length': 0 } })).headers.location);
  const data = join(s.root, 'uploads', loc.split('/').pop()!, 'data');
  await rm(data);
  await symlink('/dev/full', data);
  const started = Date.now();
  assertOutOfSpace(await sendLarge(`${s.url}${loc}`, 'PATCH', randomBytes(8 * MiB)), started);
  assert.equal((await request(`${s.url}${loc}`)).status, 404);
  assert.deepEqual(await readdir(join(s.root, 'uploads')), []);
  assert.equal((await request(`${s.url}/v2/full/blobs/uploads/`, { method: 'POST', headers: { 'content-length': 0 } })).status, 202);
});
