/**
 * The access log tells what the client got: a request cut by the idle time-out or left by its
 * client has no status and a note, not the 200 node's response holds before anything is sent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { request, startTestServer } from '../test-support/serve.js';
import { formatAccess } from './access-log.js';

const OCTET = { 'content-type': 'application/octet-stream' };

async function waitFor(lines: string[], re: RegExp, ms = 5000): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    const hit = lines.find((l) => re.test(l));
    if (hit) return hit;
    if (Date.now() > deadline) throw new Error(`no log line like ${re}: ${lines.join('\n')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A PATCH that sends its headers and 10 of its 1000 bytes, then nothing. */
function stalledPatch(url: string): http.ClientRequest {
  const req = http.request(url, { method: 'PATCH', agent: false, headers: { ...OCTET, 'content-length': 1000 } });
  req.on('error', () => undefined);
  req.write('0123456789');
  return req;
}

test('a PATCH cut by the idle time-out is logged without a status and with the reason, not as 200', async (t) => {
  const lines: string[] = [];
  const s = await startTestServer(t, { idleTimeoutMs: 300, minUploadRate: 0, accessLog: (l) => lines.push(l) });
  const loc = String((await request(`${s.url}/v2/log/blobs/uploads/`, { method: 'POST', headers: { 'content-length': 0 } })).headers.location);
  const req = stalledPatch(`${s.url}${loc}`);
  t.after(() => req.destroy());
  const line = await waitFor(lines, /"PATCH /);
  assert.match(line, /^\S+ 127\.0\.0\.1 - "PATCH \/v2\/log\/blobs\/uploads\/[0-9a-f-]+" - in=\d+ out=0 \d+\.\dms note="no answer: idle time-out \(nothing for 300 ms\)"$/);
  assert.match(await waitFor(lines, /"POST /), /" 202 in=0 out=\d+ [\d.]+ms$/, 'an answered request has its status and no note');
});

test('a PATCH whose client leaves is logged without a status (JSON: null) and with the reason', async (t) => {
  const lines: string[] = [];
  const s = await startTestServer(t, { minUploadRate: 0, accessLog: (l) => lines.push(l), logFormat: 'json' });
  const loc = String((await request(`${s.url}/v2/log/blobs/uploads/`, { method: 'POST', headers: { 'content-length': 0 } })).headers.location);
  const req = stalledPatch(`${s.url}${loc}`);
  await new Promise((r) => setTimeout(r, 100));
  req.destroy();
  const entry = JSON.parse(await waitFor(lines, /"PATCH"/)) as Record<string, unknown>;
  assert.equal(entry.status, null);
  assert.ok(typeof entry.in === 'number' && entry.in >= 10 && entry.in < 1000, `in: what arrived (${String(entry.in)}), not the declared 1000`);
  assert.equal(entry.note, 'no answer: the client closed the connection');
  const post = JSON.parse(await waitFor(lines, /"POST"/)) as Record<string, unknown>;
  assert.equal(post.status, 202);
  assert.equal('note' in post, false);
});

test('formatAccess: no status is "-" (JSON null); notes are escaped', () => {
  const e = { time: new Date(0), remote: '127.0.0.1', user: '', method: 'PATCH', url: '/v2/a', status: undefined, bytesIn: 5, bytesOut: 0, ms: 1.25, note: 'no answer: "x"\n' };
  assert.equal(formatAccess(e, 'text'), '1970-01-01T00:00:00.000Z 127.0.0.1 - "PATCH /v2/a" - in=5 out=0 1.3ms note="no answer: \\x22x\\x22\\x0a"');
  assert.deepEqual(JSON.parse(formatAccess(e, 'json')), { time: '1970-01-01T00:00:00.000Z', remote: '127.0.0.1', user: null, method: 'PATCH', url: '/v2/a', status: null, in: 5, out: 0, ms: 1.3, note: 'no answer: "x"\n' });
});
