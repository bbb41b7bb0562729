import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Transport, discard } from './transport.js';
import { hasErrorCode } from '../errors.js';
import { requirePeer, runCommand } from '../test-support/peers.js';
import { startTestServer } from '../test-support/serve.js';
import { tempDir } from '../test-support/tmp.js';

test('HTTPS (node:https loaded at the first such request): trusted with --ca-file, refused without it, taken with --insecure', async (t) => {
  if (!requirePeer(t, 'openssl')) return;
  const dir = await tempDir(t);
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  const r = await runCommand('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
  assert.equal(r.code, 0, r.stderr);
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
