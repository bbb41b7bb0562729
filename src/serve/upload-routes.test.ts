/**
 * Spec tests of blob uploads over HTTP (end-4a, end-4b, end-5, end-6, end-11, end-13, end-14):
 * status, headers and error bodies, against a server on 127.0.0.1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { onS3, poolHexes, putBlob, request, sha256, sha512, specError, startTestServer } from '../test-support/serve.js';
import { tempDir } from '../test-support/tmp.js';
import { createApp } from './app.js';
import { Auth } from './auth.js';
import { Gate } from './gate.js';
import { RepoStore } from './repo-store.js';
import { Uploads } from './uploads.js';

const OCTET = { 'content-type': 'application/octet-stream' };
const UUID = /^\/v2\/([a-z0-9/]+)\/blobs\/uploads\/([0-9a-f-]{36})$/;

async function session(base: string, name: string): Promise<string> {
  const r = await request(`${base}/v2/${name}/blobs/uploads/`, { method: 'POST', headers: { 'content-length': 0 } });
  assert.equal(r.status, 202, r.text);
  return String(r.headers.location);
}

test('POST opens a session: 202 with a Location holding a UUID; GET on it is 204 with Range', async (t) => {
  const s = await startTestServer(t);
  const r = await request(`${s.url}/v2/team/model/blobs/uploads/`, { method: 'POST', headers: { 'content-length': 0 } });
  assert.equal(r.status, 202);
  const loc = String(r.headers.location);
  const m = UUID.exec(loc);
  assert.ok(m, loc);
  assert.equal(m![1], 'team/model');
  assert.equal(r.headers['docker-upload-uuid'], m![2]);
  assert.equal(r.headers['docker-distribution-api-version'], 'registry/2.0');
  const st = await request(`${s.url}${loc}`);
  assert.equal(st.status, 204);
  assert.equal(st.headers.location, loc);
  assert.equal(st.headers.range, '0-0');
  assert.equal(st.body.length, 0);
});

test('chunked upload: PATCHes in order (202, Range), status, closing PUT (201, Location, digest); the blob is served', async (t) => {
  const s = await startTestServer(t);
  const blob = randomBytes(300_000);
  const digest = sha256(blob);
  const loc = await session(s.url, 'a/b');
  const p1 = await request(`${s.url}${loc}`, { method: 'PATCH', body: blob.subarray(0, 100_000), headers: { ...OCTET, 'content-range': '0-99999' } });
  assert.equal(p1.status, 202, p1.text);
  assert.equal(p1.headers.range, '0-99999');
  assert.equal(p1.headers.location, loc);
  const st = await request(`${s.url}${loc}`);
  assert.equal(st.status, 204);
  assert.equal(st.headers.range, '0-99999');
  const p2 = await request(`${s.url}${loc}`, { method: 'PATCH', body: blob.subarray(100_000, 250_000), headers: { ...OCTET, 'content-range': '100000-249999' } });
  assert.equal(p2.status, 202);
  assert.equal(p2.headers.range, '0-249999');
  // The last chunk rides on the closing PUT.
  const put = await request(`${s.url}${loc}?digest=${digest}`, { method: 'PUT', body: blob.subarray(250_000), headers: { ...OCTET, 'content-range': '250000-299999' } });
  assert.equal(put.status, 201, put.text);
  assert.equal(put.headers.location, `/v2/a/b/blobs/${digest}`);
  assert.equal(put.headers['docker-content-digest'], digest);
  const got = await request(`${s.url}/v2/a/b/blobs/${digest}`);
  assert.equal(got.status, 200);
  assert.deepEqual(got.body, blob);
  const gone = await request(`${s.url}${loc}`);
  assert.equal(gone.status, 404);
  assert.equal(specError(gone).code, 'BLOB_UPLOAD_UNKNOWN');
});

test('a chunk out of order is 416 BLOB_UPLOAD_INVALID with Range and Location; so is a malformed Content-Range', async (t) => {
  const s = await startTestServer(t);
  const loc = await session(s.url, 'a');
  assert.equal((await request(`${s.url}${loc}`, { method: 'PATCH', body: 'abcd', headers: { ...OCTET, 'content-range': '0-3' } })).status, 202);
  for (const range of ['10-13', '0-3', '2-5']) {
    const r = await request(`${s.url}${loc}`, { method: 'PATCH', body: 'efgh', headers: { ...OCTET, 'content-range': range } });
    assert.equal(r.status, 416, range);
    assert.equal(specError(r).code, 'BLOB_UPLOAD_INVALID');
    assert.equal(specError(r).message, 'blob upload invalid');
    assert.equal(r.headers.range, '0-3');
    assert.equal(r.headers.location, loc);
  }
  const bad = await request(`${s.url}${loc}`, { method: 'PATCH', body: 'efgh', headers: { ...OCTET, 'content-range': 'bytes=x-y' } });
  assert.equal(bad.status, 416);
  assert.equal(bad.headers.range, '0-3');
  // The session is intact: the right chunk still goes on.
  assert.equal((await request(`${s.url}${loc}`, { method: 'PATCH', body: 'efgh', headers: { ...OCTET, 'content-range': '4-7' } })).headers.range, '0-7');
  const mismatch = await request(`${s.url}${loc}`, { method: 'PATCH', body: 'ijk', headers: { ...OCTET, 'content-range': '8-11' } });
  assert.equal(mismatch.status, 400);
  assert.equal(specError(mismatch).code, 'SIZE_INVALID');
});

test('a chunked-encoding PATCH must carry as many bytes as its Content-Range says (400 SIZE_INVALID); none past the range are kept', async (t) => {
  const s = await startTestServer(t);
  const loc = await session(s.url, 'cr');
  const chunked = { ...OCTET, 'transfer-encoding': 'chunked' };
  const long = await request(`${s.url}${loc}`, { method: 'PATCH', body: 'abcdefghij', headers: { ...chunked, 'content-range': '0-2' } });
  assert.equal(long.status, 400, long.text);
  assert.equal(specError(long).code, 'SIZE_INVALID');
  assert.equal((await request(`${s.url}${loc}`)).headers.range, '0-0', 'nothing beyond the declared range was appended');
  const short = await request(`${s.url}${loc}`, { method: 'PATCH', body: 'abc', headers: { ...chunked, 'content-range': '0-9' } });
  assert.equal(short.status, 400, short.text);
  assert.equal(specError(short).code, 'SIZE_INVALID');
  assert.equal((await request(`${s.url}${loc}`)).headers.range, '0-2', 'what a short body brought is kept, and the status says so');
  const right = await request(`${s.url}${loc}`, { method: 'PATCH', body: 'def', headers: { ...chunked, 'content-range': '3-5' } });
  assert.equal(right.status, 202, right.text);
  assert.equal(right.headers.range, '0-5');
  assert.equal((await request(`${s.url}${loc}?digest=${sha256('abcdef')}`, { method: 'PUT', headers: { 'content-length': 0 } })).status, 201);
});

test('a streamed PATCH (no Content-Range, chunked encoding) appends; PUT with an empty body closes', async (t) => {
  const s = await startTestServer(t);
  const blob = randomBytes(200_000);
  const loc = await session(s.url, 'stream/me');
  const p = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = http.request(`${s.url}${loc}`, { method: 'PATCH', headers: { ...OCTET, 'transfer-encoding': 'chunked' } }, resolve);
    req.on('error', reject);
    req.write(blob.subarray(0, 70_000));
    setTimeout(() => req.end(blob.subarray(70_000)), 20);
  });
  p.resume();
  assert.equal(p.statusCode, 202);
  assert.equal(p.headers.range, '0-199999');
  const put = await request(`${s.url}${loc}?digest=${sha256(blob)}`, { method: 'PUT', headers: { 'content-length': 0 } });
  assert.equal(put.status, 201, put.text);
  assert.deepEqual((await request(`${s.url}/v2/stream/me/blobs/${sha256(blob)}`)).body, blob);
});

test('closing with a wrong digest is 400 DIGEST_INVALID, ends the session and stores nothing; no digest or a malformed one is 400', async (t) => {
  const s = await startTestServer(t);
  let loc = await session(s.url, 'a');
  const none = await request(`${s.url}${loc}`, { method: 'PUT', headers: { 'content-length': 0 } });
  assert.equal(none.status, 400);
  assert.equal(specError(none).code, 'DIGEST_INVALID');
  const malformed = await request(`${s.url}${loc}?digest=sha256:1234`, { method: 'PUT', headers: { 'content-length': 0 } });
  assert.equal(malformed.status, 400);
  assert.equal(specError(malformed).code, 'DIGEST_INVALID');
  const wrong = sha256('something else');
  const r = await request(`${s.url}${loc}?digest=${wrong}`, { method: 'PUT', body: 'the real bytes', headers: OCTET });
  assert.equal(r.status, 400);
  assert.equal(specError(r).code, 'DIGEST_INVALID');
  assert.equal((await request(`${s.url}/v2/a/blobs/${wrong}`)).status, 404);
  assert.equal((await request(`${s.url}/v2/a/blobs/${sha256('the real bytes')}`)).status, 404);
  assert.equal((await request(`${s.url}${loc}`)).status, 404, 'the session is gone');
  assert.deepEqual(await poolHexes(s), []);
  // Monolithic POST with the wrong digest: the same.
  loc = `/v2/a/blobs/uploads/?digest=${wrong}`;
  const mono = await request(`${s.url}${loc}`, { method: 'POST', body: 'other bytes', headers: OCTET });
  assert.equal(mono.status, 400);
  assert.equal(specError(mono).code, 'DIGEST_INVALID');
  if (!onS3()) assert.deepEqual(await readdir(join(s.root, 'uploads')), [], 'no session left behind');
});

test('monolithic POST ?digest= (201) with sha256 and sha512; a body without ?digest= is 400', async (t) => {
  const s = await startTestServer(t);
  const blob = randomBytes(50_000);
  const r = await request(`${s.url}/v2/mono/blobs/uploads/?digest=${sha256(blob)}`, { method: 'POST', body: blob, headers: OCTET });
  assert.equal(r.status, 201);
  assert.equal(r.headers.location, `/v2/mono/blobs/${sha256(blob)}`);
  assert.equal(r.headers['docker-content-digest'], sha256(blob));
  const d512 = sha512(blob);
  const r512 = await request(`${s.url}/v2/mono/blobs/uploads/?digest=${d512}`, { method: 'POST', body: blob, headers: OCTET });
  assert.equal(r512.status, 201, r512.text);
  const got = await request(`${s.url}/v2/mono/blobs/${d512}`);
  assert.equal(got.status, 200);
  assert.equal(got.headers['docker-content-digest'], d512);
  assert.deepEqual(got.body, blob);
  const noDigest = await request(`${s.url}/v2/mono/blobs/uploads/`, { method: 'POST', body: blob, headers: OCTET });
  assert.equal(noDigest.status, 400);
  assert.equal(specError(noDigest).code, 'BLOB_UPLOAD_INVALID');
});

test('DELETE cancels a session (204); the session is then unknown (404 BLOB_UPLOAD_UNKNOWN), as are foreign and malformed ids', async (t) => {
  const s = await startTestServer(t);
  const loc = await session(s.url, 'a');
  await request(`${s.url}${loc}`, { method: 'PATCH', body: 'abc', headers: OCTET });
  const del = await request(`${s.url}${loc}`, { method: 'DELETE' });
  assert.equal(del.status, 204);
  for (const [method, url] of [
    ['PATCH', loc],
    ['GET', loc],
    ['DELETE', loc],
    ['PUT', `${loc}?digest=${sha256('abc')}`],
    ['GET', loc.replace('/v2/a/', '/v2/b/')],
    ['GET', '/v2/a/blobs/uploads/not-a-uuid'],
    ['GET', '/v2/a/blobs/uploads/00000000-0000-0000-0000-000000000000'],
  ] as const) {
    const r = await request(`${s.url}${url}`, { method, ...(method === 'PATCH' ? { body: 'x', headers: OCTET } : {}) });
    assert.equal(r.status, 404, `${method} ${url}`);
    assert.equal(specError(r).code, 'BLOB_UPLOAD_UNKNOWN');
  }
  // A session belongs to its repository.
  const other = await session(s.url, 'x');
  const foreign = await request(`${s.url}${other.replace('/v2/x/', '/v2/y/')}`, { method: 'PATCH', body: 'x', headers: OCTET });
  assert.equal(foreign.status, 404);
});

test('mount: from a repository that holds the blob (201), without from (found), else a session (202)', async (t) => {
  const s = await startTestServer(t);
  const digest = await putBlob(s.url, 'src/repo', 'shared bytes');
  const m = await request(`${s.url}/v2/dst/one/blobs/uploads/?mount=${digest}&from=src/repo`, { method: 'POST', headers: { 'content-length': 0 } });
  assert.equal(m.status, 201);
  assert.equal(m.headers.location, `/v2/dst/one/blobs/${digest}`);
  assert.equal(m.headers['docker-content-digest'], digest);
  assert.equal((await request(`${s.url}/v2/dst/one/blobs/${digest}`)).text, 'shared bytes');
  const noFrom = await request(`${s.url}/v2/dst/two/blobs/uploads/?mount=${digest}`, { method: 'POST', headers: { 'content-length': 0 } });
  assert.equal(noFrom.status, 201);
  assert.equal((await request(`${s.url}/v2/dst/two/blobs/${digest}`)).status, 200);
  const missing = sha256('not here');
  const fallback = await request(`${s.url}/v2/dst/three/blobs/uploads/?mount=${missing}&from=src/repo`, { method: 'POST', headers: { 'content-length': 0 } });
  assert.equal(fallback.status, 202);
  assert.match(String(fallback.headers.location), UUID);
  const bad = await request(`${s.url}/v2/dst/blobs/uploads/?mount=sha256:zz&from=src/repo`, { method: 'POST', headers: { 'content-length': 0 } });
  assert.equal(bad.status, 400);
  assert.equal(specError(bad).code, 'DIGEST_INVALID');
  const badFrom = await request(`${s.url}/v2/dst/blobs/uploads/?mount=${digest}&from=../etc`, { method: 'POST', headers: { 'content-length': 0 } });
  assert.equal(badFrom.status, 400);
  assert.equal(specError(badFrom).code, 'NAME_INVALID');
});

test('one pool for every repository: the same blob pushed to two repositories (at once) is stored once, visible in both', async (t) => {
  const s = await startTestServer(t);
  const blob = randomBytes(1 << 20);
  const [a, b] = await Promise.all([putBlob(s.url, 'r/one', blob), putBlob(s.url, 'r/two', blob)]);
  assert.equal(a, b);
  const files = await poolHexes(s);
  assert.deepEqual(files, [a.slice(7)]);
  if (!onS3()) assert.equal(((await stat(join(s.root, 'blobs', 'sha256', files[0]!))).mode & 0o777).toString(8), '444');
  for (const name of ['r/one', 'r/two']) assert.deepEqual((await request(`${s.url}/v2/${name}/blobs/${a}`)).body, blob);
  assert.equal((await request(`${s.url}/v2/r/three/blobs/${a}`)).status, 404, 'not visible where nobody put it');
});

test('a session survives a restart of the server: status, then the rest, then close', async (t) => {
  const s = await startTestServer(t);
  const blob = randomBytes(120_000);
  const loc = await session(s.url, 'keep/me');
  assert.equal((await request(`${s.url}${loc}`, { method: 'PATCH', body: blob.subarray(0, 50_000), headers: { ...OCTET, 'content-range': '0-49999' } })).status, 202);
  await s.close();
  const s2 = await startTestServer(t, { root: s.root });
  const st = await request(`${s2.url}${loc}`);
  assert.equal(st.status, 204);
  assert.equal(st.headers.range, '0-49999');
  assert.equal((await request(`${s2.url}${loc}`, { method: 'PATCH', body: blob.subarray(50_000), headers: { ...OCTET, 'content-range': '50000-119999' } })).status, 202);
  const put = await request(`${s2.url}${loc}?digest=${sha256(blob)}`, { method: 'PUT', headers: { 'content-length': 0 } });
  assert.equal(put.status, 201, put.text);
  assert.deepEqual((await request(`${s2.url}/v2/keep/me/blobs/${sha256(blob)}`)).body, blob);
});

test('closing an upload hashes it without holding the gate: a collection waiting there does not stop it', async (t) => {
  const root = await tempDir(t, 'mpk-serve-gate-');
  const store = new RepoStore(root);
  const uploads = new Uploads(root, store.pool, { maxFollowers: 0 });
  const gate = new Gate();
  const app = createApp({ store, uploads, gate, auth: new Auth({ mode: 'none' }, () => ''), deletes: 'all', touchOlderMs: 60_000 });
  const server = http.createServer((req, res) => void app(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    release?.();
    server.closeAllConnections();
    return new Promise((r) => server.close(r));
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let release: (() => void) | undefined;
  const blob = randomBytes(100_000);
  const loc = await session(base, 'g');
  assert.equal((await request(`${base}${loc}`, { method: 'PATCH', body: blob, headers: OCTET })).status, 202);
  const held = new Promise<void>((r) => (release = r));
  const collecting = gate.withExclusive(() => held); // a collection holds the gate
  const within = <T>(p: Promise<T>, ms: number): Promise<T | 'waiting'> => Promise.race([p, new Promise<'waiting'>((r) => setTimeout(() => r('waiting'), ms))]);
  // sha512 makes the close hash the whole file again; the wrong digest is known before the gate.
  const wrong = await within(request(`${base}${loc}?digest=${sha512('other bytes')}`, { method: 'PUT', headers: { 'content-length': 0 } }), 2000);
  assert.notEqual(wrong, 'waiting', 'the close waited for the gate before checking its digest');
  assert.equal(wrong !== 'waiting' && specError(wrong).code, 'DIGEST_INVALID');
  // A right one is checked, then waits for the gate to commit and link.
  const loc2 = await session(base, 'g');
  assert.equal((await request(`${base}${loc2}`, { method: 'PATCH', body: blob, headers: OCTET })).status, 202);
  const closing = request(`${base}${loc2}?digest=${sha512(blob)}`, { method: 'PUT', headers: { 'content-length': 0 } });
  assert.equal(await within(closing, 200), 'waiting', 'committed while a collection held the gate');
  release!();
  await collecting;
  assert.equal((await closing).status, 201);
  assert.deepEqual((await request(`${base}/v2/g/blobs/${sha512(blob)}`)).body, blob);
  uploads.close();
});
