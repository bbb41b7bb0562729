/**
 * The server's operations: /healthz, bounded headers, the access log, upload admission (429 past
 * the queue), one server per root, and a graceful shutdown that lets running requests finish.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { hasErrorCode } from '../errors.js';
import { putImage, request, sha256, specError, startTestServer } from '../test-support/serve.js';
import { startServer } from './server.js';

const OCTET = { 'content-type': 'application/octet-stream' };

async function session(base: string, name: string): Promise<string> {
  const r = await request(`${base}/v2/${name}/blobs/uploads/`, { method: 'POST', headers: { 'content-length': 0 } });
  assert.equal(r.status, 202);
  return String(r.headers.location);
}

/** A PATCH whose body is sent in parts: the caller ends it. */
function openPatch(url: string): { req: http.ClientRequest; res: Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> } {
  const req = http.request(url, { method: 'PATCH', headers: { ...OCTET, 'transfer-encoding': 'chunked' }, agent: false });
  const res = new Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }>((resolve, reject) => {
    req.on('response', (r) => {
      let body = '';
      r.on('data', (d) => (body += d));
      r.on('end', () => resolve({ status: r.statusCode ?? 0, body, headers: r.headers }));
    });
    req.on('error', reject);
  });
  req.flushHeaders();
  return { req, res };
}

test('/healthz answers 200; /v2/ carries the API version header', async (t) => {
  const s = await startTestServer(t);
  const h = await request(`${s.url}/healthz`);
  assert.equal(h.status, 200);
  assert.deepEqual(h.json(), { status: 'ok' });
  const v = await request(`${s.url}/v2/`);
  assert.equal(v.status, 200);
  assert.equal(v.headers['docker-distribution-api-version'], 'registry/2.0');
});

test('request headers are bounded (431), and the access log has one JSON line per request', async (t) => {
  const lines: string[] = [];
  const s = await startTestServer(t, { accessLog: (l) => lines.push(l), logFormat: 'json' });
  const big = await new Promise<number>((resolve, reject) => {
    const req = http.request(`${s.url}/v2/`, { headers: { 'x-big': 'a'.repeat(20 * 1024) }, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(big, 431);
  await request(`${s.url}/v2/some/repo/tags/list`);
  await new Promise((r) => setImmediate(r));
  const entry = JSON.parse(lines.at(-1)!);
  assert.equal(entry.method, 'GET');
  assert.equal(entry.url, '/v2/some/repo/tags/list');
  assert.equal(entry.status, 404);
  assert.equal(entry.user, null);
  assert.equal(entry.remote, '127.0.0.1');
  assert.ok(entry.out > 0 && typeof entry.ms === 'number' && !Number.isNaN(Date.parse(entry.time)), lines.at(-1));
});

test('uploads beyond the admission queue get 429 TOOMANYREQUESTS with Retry-After; the admitted ones finish', async (t) => {
  const s = await startTestServer(t, { maxUploads: 1 }); // 1 running, 4 queued
  const open: Array<ReturnType<typeof openPatch>> = [];
  for (let i = 0; i < 5; i++) {
    const p = openPatch(`${s.url}${await session(s.url, 'busy')}`);
    p.req.write(`part ${i} `);
    open.push(p);
    await new Promise((r) => setTimeout(r, 30));
  }
  const extra = await request(`${s.url}${await session(s.url, 'busy')}`, { method: 'PATCH', body: 'one too many', headers: OCTET });
  assert.equal(extra.status, 429);
  assert.equal(extra.headers['retry-after'], '1');
  assert.equal(specError(extra).code, 'TOOMANYREQUESTS');
  for (const p of open) p.req.end('end');
  for (const p of open) assert.equal((await p.res).status, 202);
});

test('an upload whose client leaves while it waits in the admission queue gives its place back', async (t) => {
  const s = await startTestServer(t, { maxUploads: 1 });
  const running = openPatch(`${s.url}${await session(s.url, 'q')}`);
  running.req.write('holds the only place ');
  await new Promise((r) => setTimeout(r, 30));
  const leaverLoc = await session(s.url, 'q');
  const leaver = http.request(`${s.url}${leaverLoc}`, { method: 'PATCH', headers: { ...OCTET, 'content-length': 5 }, agent: false });
  leaver.on('error', () => undefined);
  leaver.end('gone!'); // queued behind the running upload…
  await new Promise((r) => setTimeout(r, 30));
  leaver.destroy(); // …and its client leaves before its turn
  await new Promise((r) => setTimeout(r, 30));
  running.req.end('and ends');
  assert.equal((await running.res).status, 202);
  const within = <T>(p: Promise<T>): Promise<T | 'hung'> => Promise.race([p, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 3000))]);
  const next = await within(request(`${s.url}${await session(s.url, 'q')}`, { method: 'PATCH', body: 'next', headers: OCTET }));
  assert.notEqual(next, 'hung', 'the place of the client that left was never given back');
  assert.equal(next !== 'hung' && next.status, 202);
  const same = await within(request(`${s.url}${leaverLoc}`, { method: 'PATCH', body: 'again', headers: OCTET }));
  assert.equal(same !== 'hung' && same.status, 202, 'the session it left is usable');
});

test('one server per root: a second one is refused as LOCKED', async (t) => {
  const s = await startTestServer(t);
  await assert.rejects(startServer({ root: s.root, addr: '127.0.0.1:0' }), (e: unknown) => hasErrorCode(e, 'LOCKED'));
});

test('graceful shutdown: new connections are refused, a running upload finishes and is kept', async (t) => {
  const s = await startTestServer(t);
  const loc = await session(s.url, 'slow');
  const p = openPatch(`${s.url}${loc}`);
  p.req.write('first half, ');
  await new Promise((r) => setTimeout(r, 50));
  const closing = s.close();
  await new Promise((r) => setTimeout(r, 50));
  await assert.rejects(request(`${s.url}/v2/`), 'no new connections while stopping');
  p.req.end('second half');
  const res = await p.res;
  assert.equal(res.status, 202);
  assert.equal(res.headers.range, `0-${'first half, second half'.length - 1}`);
  await closing;
  const again = await startTestServer(t, { root: s.root });
  const put = await request(`${again.url}${loc}?digest=${sha256('first half, second half')}`, { method: 'PUT', headers: { 'content-length': 0 } });
  assert.equal(put.status, 201, put.text);
});

test('with fsync, blobs, manifests and tags commit and serve the same way', async (t) => {
  const s = await startTestServer(t, { fsync: true });
  const img = await putImage(s.url, 'durable/m', 'v1');
  const r = await request(`${s.url}/v2/durable/m/manifests/v1`);
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, img.bytes);
  assert.equal((await request(`${s.url}/v2/durable/m/blobs/${img.layer}`)).text, 'layer of x');
});
