import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { rawGet } from './raw-get.js';
import { hasErrorCode, PackError } from '../errors.js';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

async function httpServer(t: { after(fn: () => unknown): void }, handler: Handler): Promise<URL> {
  const srv = http.createServer(handler);
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  t.after(() => {
    srv.closeAllConnections();
    srv.close();
  });
  return new URL(`http://127.0.0.1:${(srv.address() as net.AddressInfo).port}/v2/x/blobs/sha256:00`);
}

/** A server that writes exactly what `script` does on the raw socket (for answers node:http won't give). */
async function rawServer(t: { after(fn: () => unknown): void }, script: (s: net.Socket) => void): Promise<URL> {
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.once('data', () => script(s));
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  t.after(() => {
    for (const s of sockets) s.destroy();
    srv.close();
  });
  return new URL(`http://127.0.0.1:${(srv.address() as net.AddressInfo).port}/v2/x/blobs/sha256:00`);
}

async function collect(body: Readable): Promise<{ data: Buffer; sizes: number[] }> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return { data: Buffer.concat(chunks), sizes: chunks.map((c) => c.length) };
}

async function bodyError(body: Readable): Promise<unknown> {
  try {
    await collect(body);
  } catch (e) {
    return e;
  }
  assert.fail('the body ended without an error');
}

const OPTS = { stallMs: 5000 };

test('raw GET: a 200 body arrives whole, in 1 MiB buffers, with the request headers sent', async (t) => {
  const blob = randomBytes(5 * 1024 * 1024 + 7);
  let seen: http.IncomingHttpHeaders = {};
  const url = await httpServer(t, (req, res) => {
    seen = req.headers;
    res.writeHead(200, { 'content-length': blob.length, 'docker-content-digest': 'sha256:00' });
    res.end(blob);
  });
  const r = await rawGet(url, { authorization: 'Bearer abc', accept: '*/*' }, OPTS);
  assert.ok(r, 'the fast path took the answer');
  assert.equal(r.status, 200);
  assert.equal(r.headers['docker-content-digest'], 'sha256:00');
  const { data, sizes } = await collect(r.body);
  assert.ok(data.equals(blob), 'same bytes');
  assert.deepEqual(sizes.slice(0, 5), [1 << 20, 1 << 20, 1 << 20, 1 << 20, 1 << 20], 'full 1 MiB buffers');
  assert.equal(sizes.length, 6);
  assert.equal(seen.authorization, 'Bearer abc');
  assert.equal(seen.connection, 'close');
  assert.match(String(seen['user-agent']), /^mpk\//);
});

test('raw GET: a 206 answer to a Range request keeps its Content-Range', async (t) => {
  const blob = randomBytes(3 * 1024 * 1024);
  const url = await httpServer(t, (req, res) => {
    const from = Number(/bytes=(\d+)-/.exec(String(req.headers.range))?.[1]);
    res.writeHead(206, { 'content-length': blob.length - from, 'content-range': `bytes ${from}-${blob.length - 1}/${blob.length}` });
    res.end(blob.subarray(from));
  });
  const r = await rawGet(url, { range: 'bytes=1000-' }, OPTS);
  assert.ok(r);
  assert.equal(r.status, 206);
  assert.equal(r.headers['content-range'], `bytes 1000-${blob.length - 1}/${blob.length}`);
  assert.ok((await collect(r.body)).data.equals(blob.subarray(1000)));
});

test('raw GET: challenges, redirects, errors and chunked bodies are left to the general client', async (t) => {
  const answers: Array<[number, Record<string, string>, string | undefined]> = [
    [401, { 'www-authenticate': 'Bearer realm="x"' }, 'no'],
    [307, { location: 'http://elsewhere/blob' }, ''],
    [404, { 'content-type': 'application/json' }, '{"errors":[]}'],
    [200, {}, undefined], // chunked: no Content-Length
  ];
  for (const [status, headers, text] of answers) {
    const url = await httpServer(t, (_req, res) => {
      res.writeHead(status, headers);
      if (text === undefined) {
        res.write('abc');
        res.end('def');
      } else res.end(text);
    });
    assert.equal(await rawGet(url, {}, OPTS), undefined, `status ${status}`);
  }
  // Nothing listening: also undefined (the general client reports it with its retries and hints).
  const closed = await httpServer(t, () => undefined);
  const port = closed.port;
  const free = new URL(`http://127.0.0.1:1/x`);
  assert.equal(await rawGet(free, {}, OPTS), undefined, `connection refused (port 1, server was on ${port})`);
});

test('raw GET: a header value with a line break is never sent', async (t) => {
  let requests = 0;
  const url = await httpServer(t, (_req, res) => {
    requests++;
    res.end();
  });
  assert.equal(await rawGet(url, { authorization: 'Bearer a\r\nX-Evil: 1' }, OPTS), undefined);
  assert.equal(requests, 0);
});

test('raw GET: a connection cut in the body is a NETWORK error that says how far it got', async (t) => {
  const url = await rawServer(t, (s) => {
    s.write('HTTP/1.1 200 OK\r\nContent-Length: 4000000\r\n\r\n');
    s.write(Buffer.alloc(1_500_000, 1), () => s.destroy());
  });
  const r = await rawGet(url, {}, OPTS);
  assert.ok(r);
  const e = await bodyError(r.body);
  assert.ok(hasErrorCode(e, 'NETWORK'), String(e));
  assert.match((e as Error).message, /after 1500000 of 4000000 bytes/);
});

test('raw GET: more bytes than Content-Length is an error, not a longer blob', async (t) => {
  const url = await rawServer(t, (s) => {
    s.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789ABCDEFGHIJ');
  });
  const r = await rawGet(url, {}, OPTS);
  // The head and the excess arrive together: the answer is refused whole or its body fails.
  if (r) assert.ok(hasErrorCode(await bodyError(r.body), 'NETWORK'));
});

test('raw GET: a stalled body fails after stallMs with NETWORK', async (t) => {
  const url = await rawServer(t, (s) => {
    s.write('HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n');
    s.write(Buffer.alloc(1000)); // then silence
  });
  const r = await rawGet(url, {}, { stallMs: 300 });
  assert.ok(r);
  const e = await bodyError(r.body);
  assert.ok(hasErrorCode(e, 'NETWORK'));
  assert.match((e as Error).message, /stalled/);
});

test('raw GET: an abort in the body is ABORTED', async (t) => {
  const url = await rawServer(t, (s) => {
    s.write('HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n');
    s.write(Buffer.alloc(1000));
  });
  const ac = new AbortController();
  const r = await rawGet(url, {}, { stallMs: 10_000, signal: ac.signal });
  assert.ok(r);
  setTimeout(() => ac.abort(), 50);
  const e = await bodyError(r.body);
  assert.ok(e instanceof PackError && e.code === 'ABORTED', String(e));
});

test('raw GET: a reader that stops reading stops the socket (memory stays bounded)', async (t) => {
  const total = 256 * 1024 * 1024;
  let sent = 0;
  const url = await httpServer(t, (_req, res) => {
    res.writeHead(200, { 'content-length': total });
    const block = Buffer.alloc(1 << 20);
    const pump = () => {
      while (sent < total) {
        sent += block.length;
        if (!res.write(block)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  });
  const r = await rawGet(url, {}, OPTS);
  assert.ok(r);
  await new Promise((resolve) => setTimeout(resolve, 400)); // nobody reads
  assert.ok(r.body.readableLength <= 3 * 1024 * 1024, `buffered ${r.body.readableLength} bytes`);
  assert.ok(sent < 64 * 1024 * 1024, `the server could send ${sent} bytes: the socket was not paused`);
  let got = 0;
  for await (const c of r.body) got += (c as Buffer).length;
  assert.equal(got, total, 'reading again resumes to the end');
});
