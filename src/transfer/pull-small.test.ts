/**
 * Pulls of many small blobs against a real docker-registry: their GETs go pipelined on a few
 * connections (see registry/pipelined-get.ts), and every file arrives intact.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as netConnect, createServer as createNetServer, type AddressInfo } from 'node:net';
import { pullModel, pushModel } from './transfer.js';
import { fileRegistry } from '../test-support/registry-peer.js';
import { assertSameFiles, builtModel, openStore } from '../test-support/store-models.js';

const registry = fileRegistry();

test('a pull of many small blobs pipelines their GETs on a few connections; every file arrives intact', async (t) => {
  const reg = await registry(t);
  if (!reg) return;
  const files: Record<string, string> = { 'config.json': '{"model_type":"llama"}', 'model.safetensors': 'w'.repeat(5000) };
  for (let i = 0; i < 120; i++) files[`data/part-${i}.json`] = JSON.stringify({ i, pad: 'x'.repeat(i * 7) });
  const { store, dir, built, ref } = await builtModel(t, 'many', files);
  const remote = `${reg.host}/tt/many:v1`;
  await pushModel(store, ref, remote);
  // A TCP proxy in front of the registry: counts connections and the GET heads each read carries.
  let connections = 0;
  let mostGetsInOneRead = 0;
  const [host, port] = reg.host.split(':');
  const proxy = createNetServer((c) => {
    connections++;
    const up = netConnect(Number(port), host!);
    c.on('data', (d: Buffer) => (mostGetsInOneRead = Math.max(mostGetsInOneRead, d.toString('latin1').split('GET /v2/').length - 1)));
    c.pipe(up).pipe(c);
    c.on('error', () => up.destroy());
    up.on('error', () => c.destroy());
  });
  proxy.listen(0, '127.0.0.1');
  await once(proxy, 'listening');
  t.after(() => proxy.close());
  const via = `127.0.0.1:${(proxy.address() as AddressInfo).port}/tt/many:v1`;
  const store2 = await openStore(t);
  const pulled = await pullModel(store2, via);
  assert.equal(pulled.root.digest, built.manifest.digest);
  assert.equal(pulled.stats.transferred, 123, 'config and 122 files');
  await assertSameFiles(t, store2, via, dir, 122);
  assert.ok(mostGetsInOneRead >= 2, `GETs were pipelined (at most ${mostGetsInOneRead} in one read)`);
  assert.ok(connections <= 10, `${connections} connections for 123 blobs`);
});
