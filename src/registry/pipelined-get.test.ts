import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { SmallGetPool, pipelineEligible } from './pipelined-get.js';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** A node:http server on 127.0.0.1 that counts the connections it was given. */
async function httpServer(t: { after(fn: () => unknown): void }, handler: Handler): Promise<{ url: URL; connections: () => number }> {
  const srv = http.createServer(handler);
  let connections = 0;
  srv.on('connection', () => connections++);
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  t.after(() => {
    srv.closeAllConnections();
    srv.close();
  });
  return { url: new URL(`http://127.0.0.1:${(srv.address() as net.AddressInfo).port}`), connections: () => connections };
}

/** A raw TCP server: `onRequests` sees the request bytes as they arrive and writes what it likes. */
async function rawServer(t: { after(fn: () => unknown): void }, onData: (s: net.Socket, text: string) => void): Promise<URL> {
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('data', (d) => onData(s, d.toString('latin1')));
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  t.after(() => {
    for (const s of sockets) s.destroy();
    srv.close();
  });
  return new URL(`http://127.0.0.1:${(srv.address() as net.AddressInfo).port}`);
}

const blobOf = (i: number) => Buffer.from(`{"blob":${i},"pad":"${'x'.repeat(i % 97)}"}`);

test('pipelined GETs: 200 answers in order over a few kept connections, headers sent, bodies whole', async (t) => {
  const auth: Array<string | undefined> = [];
  const srv = await httpServer(t, (req, res) => {
    auth.push(req.headers.authorization);
    const i = Number(/\/b\/(\d+)$/.exec(req.url ?? '')?.[1]);
    const body = blobOf(i);
    res.writeHead(200, { 'content-length': body.length, 'content-type': 'application/octet-stream' });
    res.end(body);
  });
  const pool = new SmallGetPool(srv.url, { stallMs: 5000, connections: 3, depth: 4 });
  t.after(() => pool.close());
  const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => pool.get(`/v2/x/b/${i}`, { authorization: 'Bearer t0k' }, 1000)));
  answers.forEach((a, i) => {
    assert.ok(a, `answer ${i}`);
    assert.equal(a.status, 200);
    assert.deepEqual(a.body, blobOf(i));
  });
  assert.equal(srv.connections(), 3, 'three connections carried 200 requests');
  assert.ok(auth.every((h) => h === 'Bearer t0k'));
  assert.equal(pool.declined, false);
  // Kept open and used again later.
  assert.deepEqual((await pool.get('/v2/x/b/7', {}, 1000))?.body, blobOf(7));
  assert.equal(srv.connections(), 3);
});

test('pipelined GETs: several requests leave in one write and are answered from one read', async (t) => {
  let requestsInOneRead = 0;
  const url = await rawServer(t, (s, text) => {
    const n = text.split('\r\n\r\n').length - 1;
    requestsInOneRead = Math.max(requestsInOneRead, n);
    // All answers in one write: the client cuts them apart.
    s.write(Array.from({ length: n }, () => 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc').join(''));
  });
  const pool = new SmallGetPool(url, { stallMs: 5000, connections: 1, depth: 8 });
  t.after(() => pool.close());
  const answers = await Promise.all(Array.from({ length: 8 }, () => pool.get('/v2/x/b', {}, 10)));
  assert.ok(answers.every((a) => a?.body.toString() === 'abc'));
  assert.ok(requestsInOneRead >= 2, `requests were pipelined (${requestsInOneRead} in one read)`);
});

test('pipelined GETs: an answer other than 200 declines the pool; that request and later ones answer undefined', async (t) => {
  let n = 0;
  const srv = await httpServer(t, (req, res) => {
    n++;
    if (req.url === '/v2/x/b/redirect') {
      res.writeHead(307, { location: 'http://storage.example/b', 'content-length': 0 });
      res.end();
      return;
    }
    res.writeHead(200, { 'content-length': 2 });
    res.end('ok');
  });
  const pool = new SmallGetPool(srv.url, { stallMs: 5000, connections: 1, depth: 1 });
  t.after(() => pool.close());
  assert.equal((await pool.get('/v2/x/b/1', {}, 10))?.body.toString(), 'ok');
  assert.equal(await pool.get('/v2/x/b/redirect', {}, 10), undefined);
  assert.equal(pool.declined, true);
  const before = n;
  assert.equal(await pool.get('/v2/x/b/2', {}, 10), undefined, 'a declined pool sends nothing');
  assert.equal(n, before);
});

test('pipelined GETs: a body over the limit, a chunked answer or a lost connection answer undefined', async (t) => {
  const big = await httpServer(t, (_req, res) => {
    res.writeHead(200, { 'content-length': 100 });
    res.end(Buffer.alloc(100));
  });
  const p1 = new SmallGetPool(big.url, { stallMs: 5000 });
  t.after(() => p1.close());
  assert.equal(await p1.get('/v2/x/b', {}, 99), undefined, 'more bytes than the blob has');

  const chunked = await httpServer(t, (_req, res) => {
    res.write('ab'); // no length: node sends it chunked
    res.end('cd');
  });
  const p2 = new SmallGetPool(chunked.url, { stallMs: 5000 });
  t.after(() => p2.close());
  assert.equal(await p2.get('/v2/x/b', {}, 10), undefined);

  // The server answers the first request, then drops the connection with two more outstanding.
  const url = await rawServer(t, (s, text) => {
    if (text.includes('/first')) s.write('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1');
    if (text.includes('/third')) s.destroy();
  });
  const p3 = new SmallGetPool(url, { stallMs: 5000, connections: 1, depth: 3 });
  t.after(() => p3.close());
  const [a, b, c] = await Promise.all([p3.get('/first', {}, 10), p3.get('/second', {}, 10), p3.get('/third', {}, 10)]);
  assert.equal(a?.body.toString(), '1');
  assert.equal(b, undefined);
  assert.equal(c, undefined);
});

test('pipelined GETs: Connection: close ends the connection after its answer; a new one serves the rest', async (t) => {
  let served = 0;
  const srv = await httpServer(t, (_req, res) => {
    served++;
    res.writeHead(200, { 'content-length': 1, ...(served % 3 === 0 ? { connection: 'close' } : {}) });
    res.end('z');
  });
  const pool = new SmallGetPool(srv.url, { stallMs: 5000, connections: 1, depth: 1 });
  t.after(() => pool.close());
  for (let i = 0; i < 7; i++) assert.equal((await pool.get(`/v2/x/b/${i}`, {}, 5))?.body.toString(), 'z', `request ${i}`);
  assert.equal(srv.connections(), 3);
});

test('pipelined GETs: a stalled server or an abort answers undefined; CR/LF in a header is never sent', async (t) => {
  let requests = 0;
  const url = await rawServer(t, () => void requests++); // never answers
  const pool = new SmallGetPool(url, { stallMs: 300 });
  t.after(() => pool.close());
  const t0 = Date.now();
  assert.equal(await pool.get('/v2/x/b', {}, 10), undefined);
  assert.ok(Date.now() - t0 < 3000, 'given up after the stall time');

  const ac = new AbortController();
  const p = pool.get('/v2/x/b', {}, 10, ac.signal);
  setTimeout(() => ac.abort(), 50);
  assert.equal(await p, undefined);

  const before = requests;
  assert.equal(await pool.get('/v2/x/b', { authorization: 'Bearer x\r\nX-Evil: 1' }, 10), undefined);
  assert.equal(await pool.get('/v2/x/b HTTP/1.1\r\nX-Evil: 1\r\n\r\nGET /x', {}, 10), undefined);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(requests, before, 'nothing was sent for them');
});

test('pipelined GETs are for plain HTTP only, and MPK_PIPELINE=0 turns them off', (t) => {
  assert.equal(pipelineEligible(new URL('http://127.0.0.1:5000/v2/')), true);
  assert.equal(pipelineEligible(new URL('https://registry.example/v2/')), false);
  const old = process.env.MPK_PIPELINE;
  t.after(() => (old === undefined ? delete process.env.MPK_PIPELINE : (process.env.MPK_PIPELINE = old)));
  process.env.MPK_PIPELINE = '0';
  assert.equal(pipelineEligible(new URL('http://127.0.0.1:5000/v2/')), false);
});
