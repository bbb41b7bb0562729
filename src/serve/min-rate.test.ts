/**
 * The minimum upload rate (`--min-upload-rate`): a blob body trickling below it is cut after the
 * window with a 408, what arrived kept (the upload resumes from its Range) and its admission slot
 * given back; a body above it is never cut; the server's own pauses are not held against a client.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { request, sha256, specError, startTestServer, type T } from '../test-support/serve.js';
import { RateWatch } from './min-rate.js';

const OCTET = { 'content-type': 'application/octet-stream' };
const RATE = { minUploadRate: 1000, minUploadRateWindowMs: 400 };

async function session(base: string, name: string): Promise<string> {
  const r = await request(`${base}/v2/${name}/blobs/uploads/`, { method: 'POST', headers: { 'content-length': 0 } });
  assert.equal(r.status, 202, r.text);
  return String(r.headers.location);
}

interface Trickled {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Bytes written to the socket before the answer came. */
  sent: number;
  ms: number;
}

/**
 * A raw client: the request line and a Content-Length, then the body `step` bytes every `everyMs`
 * (100 bytes/s with the defaults), until the server answers or closes.
 */
function trickle(t: T, base: string, method: string, path: string, body: Buffer, step = 5, everyMs = 50): Promise<Trickled> {
  const u = new URL(base);
  const started = Date.now();
  const sock = net.connect(Number(u.port), u.hostname);
  t.after(() => sock.destroy());
  sock.on('error', () => undefined); // writes after the server closed
  sock.write(`${method} ${path} HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\n\r\n`);
  let sent = 0;
  let sentAtAnswer: number | undefined;
  const timer = setInterval(() => {
    if (sent >= body.length) return;
    sock.write(body.subarray(sent, sent + step));
    sent = Math.min(sent + step, body.length);
  }, everyMs);
  let raw = '';
  sock.on('data', (d: Buffer) => {
    sentAtAnswer ??= sent;
    raw += d.toString('latin1');
  });
  return new Promise((resolve) => {
    sock.once('close', () => {
      clearInterval(timer);
      const [head = '', text = ''] = raw.split('\r\n\r\n');
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
      resolve({ status: Number(statusLine.split(' ')[1] ?? 0), headers, body: text, sent: sentAtAnswer ?? sent, ms: Date.now() - started });
    });
  });
}

const within = <V>(p: Promise<V>, ms: number): Promise<V | 'hung'> => Promise.race([p, new Promise<'hung'>((r) => setTimeout(() => r('hung'), ms).unref())]);

test('a PATCH trickling below --min-upload-rate is cut after the window with 408; its bytes are kept and the upload resumes', async (t) => {
  const s = await startTestServer(t, RATE);
  const blob = randomBytes(2000); // 20 s at 100 bytes/s: only a cut ends it in time
  const loc = await session(s.url, 'slow/patch');
  const r = await within(trickle(t, s.url, 'PATCH', loc, blob), 5000);
  assert.notEqual(r, 'hung', 'the trickling body was not cut');
  if (r === 'hung') return;
  assert.equal(r.status, 408, r.body);
  assert.ok(r.ms >= 400, `cut after ${r.ms} ms, before the window`);
  const e = JSON.parse(r.body).errors[0];
  assert.equal(e.code, 'BLOB_UPLOAD_INVALID');
  assert.match(e.detail.reason, /minimum upload rate of 1000 bytes\/s \(--min-upload-rate\)/);
  assert.equal(r.headers.location, loc);
  const held = Number(/^0-(\d+)$/.exec(r.headers.range ?? '')?.[1]) + 1;
  assert.ok(held > 0 && held <= r.sent, `kept ${held} of ${r.sent} sent`);
  const st = await request(`${s.url}${loc}`);
  assert.equal(st.status, 204);
  assert.equal(st.headers.range, r.headers.range, 'the status says what was kept');
  const data = await readFile(join(s.root, 'uploads', loc.split('/').pop()!, 'data'));
  assert.deepEqual(data, blob.subarray(0, held), 'the file is a prefix of what was sent');
  const rest = await request(`${s.url}${loc}`, { method: 'PATCH', body: blob.subarray(held), headers: { ...OCTET, 'content-range': `${held}-${blob.length - 1}` } });
  assert.equal(rest.status, 202, rest.text);
  const put = await request(`${s.url}${loc}?digest=${sha256(blob)}`, { method: 'PUT', headers: { 'content-length': 0 } });
  assert.equal(put.status, 201, put.text);
});

test('a client above the minimum rate is never cut over several windows; a trickling monolithic POST beside it is (408, no session left)', async (t) => {
  const s = await startTestServer(t, RATE);
  const loc = await session(s.url, 'fast');
  const blob = randomBytes(30 * 1000);
  const fast = new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = http.request(`${s.url}${loc}`, { method: 'PATCH', headers: { ...OCTET, 'transfer-encoding': 'chunked' }, agent: false }, resolve);
    req.on('error', reject);
    let i = 0; // 1000 bytes every 50 ms (20,000 bytes/s) for 1.5 s, almost 4 windows
    const timer = setInterval(() => {
      const part = blob.subarray(i * 1000, (i + 1) * 1000);
      if (++i < 30) req.write(part);
      else {
        clearInterval(timer);
        req.end(part);
      }
    }, 50);
  });
  const slowBlob = randomBytes(2000);
  const slow = trickle(t, s.url, 'POST', `/v2/fast/blobs/uploads/?digest=${sha256(slowBlob)}`, slowBlob);
  const [res, cut] = await Promise.all([within(fast, 10_000), within(slow, 5000)]);
  assert.notEqual(cut, 'hung', 'the trickling POST was not cut');
  assert.equal(cut !== 'hung' && cut.status, 408);
  assert.notEqual(res, 'hung');
  if (res === 'hung') return;
  res.resume();
  assert.equal(res.statusCode, 202);
  assert.equal(res.headers.range, `0-${blob.length - 1}`);
  assert.deepEqual(await readdir(join(s.root, 'uploads')), [loc.split('/').pop()], 'the cut POST left no session');
});

test('the admission slot of a cut body comes back: with --max-uploads 1 the next upload runs once the trickling PUT is cut', async (t) => {
  const s = await startTestServer(t, { ...RATE, maxUploads: 1 });
  const slowLoc = await session(s.url, 'slot');
  const slowBlob = randomBytes(5000);
  const slow = trickle(t, s.url, 'PUT', `${slowLoc}?digest=${sha256(slowBlob)}`, slowBlob); // 50 s at its rate
  await new Promise((r) => setTimeout(r, 150)); // it holds the only slot
  const loc = await session(s.url, 'slot');
  const next = await within(request(`${s.url}${loc}`, { method: 'PATCH', body: 'next in line', headers: OCTET }), 5000);
  assert.notEqual(next, 'hung', 'the slot of the trickling upload never came back');
  assert.equal(next !== 'hung' && next.status, 202);
  const cut = await slow;
  assert.equal(cut.status, 408);
  assert.equal(JSON.parse(cut.body).errors[0].code, 'BLOB_UPLOAD_INVALID');
  const st = await request(`${s.url}${slowLoc}`);
  assert.equal(st.status, 204, 'the closing PUT that was cut leaves its session');
  assert.equal(st.headers.range, cut.headers.range);
  assert.notEqual(st.headers.range, '0-0');
  const err = await request(`${s.url}/v2/slot/blobs/${sha256(slowBlob)}`);
  assert.equal(specError(err).code, 'BLOB_UNKNOWN', 'nothing was committed');
});

test('RateWatch: cut once after a window below the rate, not while the server holds the body, not above the rate', async (t) => {
  const cuts: number[] = [];
  const min = { bytesPerSecond: 1000, windowMs: 200 }; // 200 bytes a window
  const idle = new RateWatch(min, (got) => cuts.push(got));
  const held = new RateWatch(min, () => cuts.push(-1));
  held.hold();
  const fed = new RateWatch(min, () => cuts.push(-2));
  const feed = setInterval(() => fed.add(200), 50); // 4000 bytes/s
  t.after(() => {
    clearInterval(feed);
    for (const w of [idle, held, fed]) w.stop();
  });
  await new Promise((r) => setTimeout(r, 600));
  assert.deepEqual(cuts, [0], 'the idle one once; the held one and the fed one not');
  held.release();
  await new Promise((r) => setTimeout(r, 700));
  assert.deepEqual(cuts, [0, -1], 'released and idle: a window later, cut');
});
