/**
 * Error bodies say what went wrong: a malformed digest is DIGEST_INVALID whose message says it is
 * malformed (not "did not match uploaded content", which is for a mismatch), wherever it comes in.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request, sha256, specError, startTestServer } from '../test-support/serve.js';

const OCTET = { 'content-type': 'application/octet-stream' };
const MISMATCH = 'provided digest did not match uploaded content';

test('a malformed digest (bad hex, wrong length, unknown algorithm) is DIGEST_INVALID with a message saying it is malformed', async (t) => {
  const s = await startTestServer(t);
  const session = async (): Promise<string> => String((await request(`${s.url}/v2/d/blobs/uploads/`, { method: 'POST', headers: { 'content-length': 0 } })).headers.location);
  for (const digest of ['sha256:xyz', 'sha256:1234', `md5:${'a'.repeat(32)}`, 'nocolon', `sha256:${'A'.repeat(64)}`]) {
    const loc = await session();
    const q = encodeURIComponent(digest);
    for (const [where, r] of [
      ['closing PUT', await request(`${s.url}${loc}?digest=${q}`, { method: 'PUT', body: 'bytes', headers: OCTET })],
      ['monolithic POST', await request(`${s.url}/v2/d/blobs/uploads/?digest=${q}`, { method: 'POST', body: 'bytes', headers: OCTET })],
      ['blob GET', await request(`${s.url}/v2/d/blobs/${q}`)],
      ['mount', await request(`${s.url}/v2/d/blobs/uploads/?mount=${q}`, { method: 'POST', headers: { 'content-length': 0 } })],
    ] as const) {
      if (where === 'blob GET' && !digest.includes(':')) continue; // a blob path without ':' is no digest route at all
      assert.equal(r.status, 400, `${where} ${digest}: ${r.text}`);
      const e = specError(r);
      assert.equal(e.code, 'DIGEST_INVALID', `${where} ${digest}`);
      assert.match(e.message, /^malformed digest: /, `${where} ${digest}: ${e.message}`);
      assert.equal((e.detail as { digest: string }).digest, digest);
    }
  }
  // No digest at all on the closing PUT: said so.
  const none = await request(`${s.url}${await session()}`, { method: 'PUT', headers: { 'content-length': 0 } });
  assert.equal(specError(none).code, 'DIGEST_INVALID');
  assert.match(specError(none).message, /needs \?digest=/);
  // A real mismatch keeps the spec's message.
  const wrong = await request(`${s.url}${await session()}?digest=${sha256('other')}`, { method: 'PUT', body: 'bytes', headers: OCTET });
  assert.equal(wrong.status, 400);
  assert.equal(specError(wrong).message, MISMATCH);
});
