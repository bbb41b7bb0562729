import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Transport, discard } from './transport.js';
import { hasErrorCode } from '../errors.js';
import { requirePeer, selfSignedCert } from '../test-support/peers.js';
import { startTestServer } from '../test-support/serve.js';
import { tempDir } from '../test-support/tmp.js';

test('HTTPS (node:https loaded at the first such request): trusted with --ca-file, refused without it, taken with --insecure', async (t) => {
  if (!requirePeer(t, 'openssl')) return;
  const { key, cert } = await selfSignedCert(await tempDir(t));
  const s = await startTestServer(t, { tlsCert: cert, tlsKey: key });
  const url = new URL(`${s.url}/v2/`);
  assert.equal(url.protocol, 'https:');
  const get = async (tr: Transport) => {
    try {
      const res = await tr.send({ method: 'GET', url });
      await discard(res);
      return res.status;
    } finally {
      tr.close();
    }
  };
  assert.equal(await get(new Transport({ caFile: cert })), 200);
  await assert.rejects(get(new Transport()), (e: unknown) => hasErrorCode(e, 'NETWORK'));
  assert.equal(await get(new Transport({ insecure: true })), 200);
});
