/**
 * Uploads of a source that does not hold its descriptor's size (a stored blob one byte short or
 * long): refused at once as corruption naming the blob, in one PUT or in PATCHes, leaving no upload
 * session on the registry; the CLI exits with the integrity code (4).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, chmod, readdir, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pushModel } from '../transfer/transfer.js';
import { buildModel } from '../build/build-model.js';
import { LocalStore } from '../store/store.js';
import { hasErrorCode } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { mpk } from '../test-support/cli.js';
import { request, startTestServer } from '../test-support/serve.js';
import { startFaultProxy } from '../test-support/fault-proxy.js';
import { makeModelDir, tempDir } from '../test-support/tmp.js';

/** A store with a built model; returns its largest layer and the file holding it, made writable. */
async function modelWithBlob(t: TestContext): Promise<{ root: string; store: LocalStore; ref: string; layer: Descriptor; file: string }> {
  const dir = await tempDir(t);
  await makeModelDir(dir, 'u');
  const root = await tempDir(t);
  const store = await LocalStore.open(root);
  t.after(() => store.close());
  const ref = 'local/u:1';
  const built = await buildModel(store, { contextDir: dir, reference: ref });
  const layer = [...built.manifestBody.layers].sort((a, b) => b.size - a.size)[0]!;
  const file = join(root, 'blobs', 'sha256', layer.digest.slice(7));
  await chmod(file, 0o644);
  return { root, store, ref, layer, file };
}

const damages: Array<[string, (file: string, size: number) => Promise<void>, RegExp]> = [
  ['one byte short', (f, size) => truncate(f, size - 1), /ends after \d+ of its \d+ bytes/],
  ['one byte long', (f) => appendFile(f, 'x'), /holds more than its \d+ bytes/],
];

for (const [what, damage, said] of damages) {
  for (const chunkSize of [0, 64 * 1024]) {
    test(`push of a stored blob ${what} (${chunkSize ? 'PATCHes' : 'one PUT'}): CORRUPT at once, naming the blob; no session left`, async (t) => {
      const s = await startTestServer(t);
      const { store, ref, layer, file } = await modelWithBlob(t);
      assert.ok(layer.size > 2 * 64 * 1024, `the layer spans several chunks: ${layer.size}`);
      await damage(file, layer.size);
      const started = Date.now();
      await assert.rejects(
        () => pushModel(store, ref, `${s.host}/c/m:1`, { chunkSize, stallMs: 20_000, retries: 2 }),
        (e: Error & { hint?: string }) => {
          assert.ok(hasErrorCode(e, 'CORRUPT'), `CORRUPT, got ${String(e)}`);
          assert.ok(e.message.includes(layer.digest), e.message);
          assert.match(e.message, said);
          assert.match(e.hint ?? '', /mpk verify/);
          return true;
        },
      );
      const ms = Date.now() - started;
      assert.ok(ms < 5000, `failed at once, not after a stall: ${ms} ms`);
      // Sessions the client opened it cancels before returning; a single POST cut short by the
      // abort is removed by the server itself once it sees the request end (within moments).
      const until = Date.now() + 3000;
      while ((await readdir(join(s.root, 'uploads')).catch(() => [])).length > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(await readdir(join(s.root, 'uploads')).catch(() => []), [], 'the upload session was cancelled');
    });
  }
}

test('mpk push of a stored blob one byte short exits 4 naming the blob, with no "0 of 0" summary or "HTTP 400 (HTTP 400)"', async (t) => {
  const s = await startTestServer(t);
  const { root, store, ref, layer, file } = await modelWithBlob(t);
  store.close();
  await truncate(file, layer.size - 1);
  const r = await mpk({ MPK_HOME: root, DOCKER_CONFIG: await tempDir(t), PATH: process.env.PATH }, root, 'push', ref, `${s.host}/c/cli:1`);
  assert.equal(r.code, 4, r.stderr);
  assert.match(r.stderr, new RegExp(`mpk: ${layer.digest}: the blob to upload ends after`));
  assert.doesNotMatch(r.stderr, /HTTP 400 \(HTTP 400\)|internal error/);
});

test('a blob past 64 MiB goes in one PATCH and a closing PUT by default; --chunk-size still cuts PATCHes', async (t) => {
  const s = await startTestServer(t);
  const proxy = await startFaultProxy(t, s.url);
  const dir = await tempDir(t);
  const big = Buffer.alloc(64 * 1024 * 1024 + 4096);
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i, i);
  await writeFile(join(dir, 'model.gguf'), big);
  const root = await tempDir(t);
  const store = await LocalStore.open(root);
  t.after(() => store.close());
  const built = await buildModel(store, { contextDir: dir, reference: 'local/big:1' });
  const layer = built.manifestBody.layers.find((l) => l.size === big.length)!;
  const uploads = (name: string) => proxy.log.filter((e) => e.url.includes(`/${name}/blobs/uploads/`) && e.method !== 'POST');
  await pushModel(store, 'local/big:1', `${proxy.host}/c/one:1`, { stallMs: 20_000 });
  const one = uploads('one');
  assert.equal(one.filter((e) => e.method === 'PATCH').length, 1, JSON.stringify(one));
  assert.ok(one.some((e) => e.method === 'PUT' && e.url.includes(encodeURIComponent(layer.digest))), 'closed by a PUT with the digest');
  await pushModel(store, 'local/big:1', `${proxy.host}/c/cut:1`, { chunkSize: 32 * 1024 * 1024, stallMs: 20_000 });
  assert.equal(uploads('cut').filter((e) => e.method === 'PATCH').length, 3, 'two full 32 MiB chunks and the rest');
  const r = await request(`${s.url}/v2/c/one/blobs/${layer.digest}`);
  assert.equal(r.status, 200);
  assert.ok(r.body.equals(big), 'the registry holds the bytes');
});
