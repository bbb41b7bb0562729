import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { LocalStore } from './store.js';
import { buildModel } from '../build/build-model.js';
import { makeModelDir, tempDir } from '../test-support/tmp.js';
import { requirePeer, runCommand } from '../test-support/peers.js';

test('skopeo reads the store as an OCI layout: copy oci:STORE:REF dir:OUT gives identical blobs', async (t) => {
  if (!requirePeer(t, 'skopeo')) return;
  const root = await tempDir(t);
  const dir = await tempDir(t);
  await makeModelDir(dir);
  const store = await LocalStore.open(root);
  let manifestDigest: string;
  try {
    manifestDigest = (await buildModel(store, { contextDir: dir, reference: 'demo:v1' })).manifest.digest;
  } finally {
    store.close();
  }
  const out = join(await tempDir(t), 'out');
  // skopeo 1.9 accepts no '/' in an oci: reference name, so this model is named without one.
  const r = await runCommand('skopeo', ['copy', '--preserve-digests', `oci:${root}:demo:v1`, `dir:${out}`]);
  assert.equal(r.code, 0, r.stderr);
  const manifest = await readFile(join(out, 'manifest.json'));
  assert.equal(`sha256:${createHash('sha256').update(manifest).digest('hex')}`, manifestDigest, 'manifest bytes unchanged');
  const m = JSON.parse(manifest.toString());
  for (const d of [m.config, ...m.layers]) {
    const hex = d.digest.slice(7);
    const copied = await readFile(join(out, hex));
    const stored = await readFile(join(root, 'blobs', 'sha256', hex));
    assert.ok(copied.equals(stored), d.digest);
  }
  assert.equal((await readdir(out)).filter((f) => /^[0-9a-f]{64}$/.test(f)).length, m.layers.length + 1);
});
