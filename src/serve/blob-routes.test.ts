/** Spec tests of blob GET (Range → 206), HEAD and DELETE (end-2, end-10) over HTTP. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { putBlob, request, specError, startTestServer } from '../test-support/serve.js';

test('GET and HEAD of a blob: 200 with length, type and digest; HEAD has no body', async (t) => {
  const s = await startTestServer(t);
  const blob = randomBytes(3 * 1024 * 1024 + 7);
  const d = await putBlob(s.url, 'x/y', blob);
  const g = await request(`${s.url}/v2/x/y/blobs/${d}`);
  assert.equal(g.status, 200);
  assert.equal(g.headers['content-type'], 'application/octet-stream');
  assert.equal(g.headers['content-length'], String(blob.length));
  assert.equal(g.headers['docker-content-digest'], d);
  assert.equal(g.headers['accept-ranges'], 'bytes');
  assert.deepEqual(g.body, blob);
  const h = await request(`${s.url}/v2/x/y/blobs/${d}`, { method: 'HEAD' });
  assert.equal(h.status, 200);
  assert.equal(h.headers['content-length'], String(blob.length));
  assert.equal(h.headers['docker-content-digest'], d);
  assert.equal(h.body.length, 0);
});

test('Range gives 206 with Content-Range (from, suffix, open end); an unsatisfiable range is 416', async (t) => {
  const s = await startTestServer(t);
  const blob = randomBytes(1000);
  const d = await putBlob(s.url, 'r', blob);
  for (const [range, start, end] of [
    ['bytes=0-99', 0, 99],
    ['bytes=900-', 900, 999],
    ['bytes=-10', 990, 999],
    ['bytes=500-5000', 500, 999],
  ] as const) {
    const r = await request(`${s.url}/v2/r/blobs/${d}`, { headers: { range } });
    assert.equal(r.status, 206, range);
    assert.equal(r.headers['content-range'], `bytes ${start}-${end}/1000`);
    assert.equal(r.headers['content-length'], String(end - start + 1));
    assert.deepEqual(r.body, blob.subarray(start, end + 1), range);
  }
  const bad = await request(`${s.url}/v2/r/blobs/${d}`, { headers: { range: 'bytes=1000-' } });
  assert.equal(bad.status, 416);
  assert.equal(bad.headers['content-range'], 'bytes */1000');
});

test('blobs spanning many 4 MiB reads come whole, and a Range across buffers is exact', async (t) => {
  const s = await startTestServer(t);
  const blob = randomBytes(13 * 1024 * 1024 + 5); // four reads: each buffer used twice
  const d = await putBlob(s.url, 'big', blob);
  const [a, b] = await Promise.all([request(`${s.url}/v2/big/blobs/${d}`), request(`${s.url}/v2/big/blobs/${d}`)]);
  assert.ok(a.body.equals(blob) && b.body.equals(blob), 'two concurrent downloads, both byte for byte');
  const from = 4 * 1024 * 1024 - 3;
  const to = 9 * 1024 * 1024 + 11;
  const r = await request(`${s.url}/v2/big/blobs/${d}`, { headers: { range: `bytes=${from}-${to}` } });
  assert.equal(r.status, 206);
  assert.ok(r.body.equals(blob.subarray(from, to + 1)));
});

test('a client that leaves mid-download frees the server: later downloads work and close() does not wait on it', async (t) => {
  const s = await startTestServer(t);
  const blob = randomBytes(24 * 1024 * 1024);
  const d = await putBlob(s.url, 'gone', blob);
  const got = await new Promise<number>((resolve, reject) => {
    const req = http.get(`${s.url}/v2/gone/blobs/${d}`, (res) => {
      res.once('data', (c: Buffer) => {
        req.destroy(); // after the first bytes, with most of the body unsent
        resolve(c.length);
      });
    });
    req.on('error', (e) => ((e as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(e)));
  });
  assert.ok(got > 0 && got < blob.length);
  const again = await request(`${s.url}/v2/gone/blobs/${d}`);
  assert.ok(again.body.equals(blob));
  const t0 = Date.now();
  await s.close();
  assert.ok(Date.now() - t0 < 5000, `close() took ${Date.now() - t0} ms`);
});

test('no range of an empty blob is satisfiable (416 bytes */0, never a 206 of bytes 0--1)', async (t) => {
  const s = await startTestServer(t);
  const d = await putBlob(s.url, 'r', '');
  for (const range of ['bytes=-5', 'bytes=0-', 'bytes=0-0']) {
    const r = await request(`${s.url}/v2/r/blobs/${d}`, { headers: { range } });
    assert.equal(r.status, 416, range);
    assert.equal(r.headers['content-range'], 'bytes */0', range);
  }
  const whole = await request(`${s.url}/v2/r/blobs/${d}`);
  assert.equal(whole.status, 200);
  assert.equal(whole.headers['content-length'], '0');
});

test('unknown blobs are 404 BLOB_UNKNOWN (also where another repository holds them); malformed digests 400 DIGEST_INVALID', async (t) => {
  const s = await startTestServer(t);
  const d = await putBlob(s.url, 'holder', 'bytes');
  for (const url of [`/v2/elsewhere/blobs/${d}`, `/v2/holder/blobs/sha256:${'0'.repeat(64)}`]) {
    const r = await request(`${s.url}${url}`);
    assert.equal(r.status, 404, url);
    assert.deepEqual(r.json(), { errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown to registry', detail: { digest: url.split('/blobs/')[1] } }] });
    assert.equal(r.headers['content-type'], 'application/json');
    const h = await request(`${s.url}${url}`, { method: 'HEAD' });
    assert.equal(h.status, 404);
    assert.equal(h.body.length, 0);
  }
  for (const digest of ['sha256:abc', `sha256:${'A'.repeat(64)}`, `sha384:${'a'.repeat(96)}`, 'nocolon', `sha512:${'a'.repeat(64)}`]) {
    const r = await request(`${s.url}/v2/holder/blobs/${digest}`);
    assert.equal(r.status, 400, digest);
    assert.equal(specError(r).code, 'DIGEST_INVALID');
  }
});

test('DELETE unlinks a blob from its repository (202), then 404; other repositories keep it', async (t) => {
  const s = await startTestServer(t);
  const d = await putBlob(s.url, 'one', 'keep me');
  await putBlob(s.url, 'two', 'keep me');
  const del = await request(`${s.url}/v2/one/blobs/${d}`, { method: 'DELETE' });
  assert.equal(del.status, 202);
  assert.equal((await request(`${s.url}/v2/one/blobs/${d}`)).status, 404);
  assert.equal((await request(`${s.url}/v2/two/blobs/${d}`)).text, 'keep me');
  const again = await request(`${s.url}/v2/one/blobs/${d}`, { method: 'DELETE' });
  assert.equal(again.status, 404);
  assert.equal(specError(again).code, 'BLOB_UNKNOWN');
});

test('with deletes disabled, DELETE of a blob is 405 UNSUPPORTED', async (t) => {
  const s = await startTestServer(t, { deletes: 'none' });
  const d = await putBlob(s.url, 'one', 'x');
  const r = await request(`${s.url}/v2/one/blobs/${d}`, { method: 'DELETE' });
  assert.equal(r.status, 405);
  assert.equal(specError(r).code, 'UNSUPPORTED');
  assert.equal((await request(`${s.url}/v2/one/blobs/${d}`)).status, 200);
});
