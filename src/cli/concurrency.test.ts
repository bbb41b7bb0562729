import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open, cp } from 'node:fs/promises';
import { join } from 'node:path';
import { makeModelDir, tempDir } from '../test-support/tmp.js';
import { mpkProcess } from '../test-support/peers.js';

test('two builds into one store at once both succeed; the store verifies clean', async (t) => {
  const home = await tempDir(t);
  const a = await tempDir(t);
  const b = await tempDir(t);
  await makeModelDir(a, 'a');
  await makeModelDir(b, 'b');
  await cp(join(a, 'model.safetensors'), join(b, 'shared.safetensors')); // a blob both builds write
  const env = { MPK_HOME: home };
  const [ra, rb] = await Promise.all([mpkProcess(['build', '-t', 'm/a:1', a], env), mpkProcess(['build', '-t', 'm/b:1', b], env)]);
  assert.equal(ra.code, 0, ra.stderr);
  assert.equal(rb.code, 0, rb.stderr);
  const ls = await mpkProcess(['ls', '-q'], env);
  assert.deepEqual(ls.stdout.trim().split('\n'), ['m/a:1', 'm/b:1']);
  const v = await mpkProcess(['verify'], env);
  assert.equal(v.code, 0, v.stdout + v.stderr);
});

test('prune while a build runs never removes what the build is writing', async (t) => {
  const home = await tempDir(t);
  const dir = await tempDir(t);
  await makeModelDir(dir);
  // Several large files, so the build is still running while prune goes round.
  for (let i = 0; i < 4; i++) {
    const f = await open(join(dir, `shard-${i}.safetensors`), 'w');
    const block = Buffer.alloc(1 << 20, i + 1);
    for (let j = 0; j < 96; j++) await f.write(block);
    await f.close();
  }
  const env = { MPK_HOME: home };
  const build = mpkProcess(['build', '-c', '1', '-t', 'big:1', dir], env);
  let done = false;
  void build.then(() => (done = true));
  let prunes = 0;
  while (!done) {
    const p = await mpkProcess(['prune', '--json'], env);
    assert.equal(p.code, 0, p.stderr);
    prunes++;
  }
  const r = await build;
  assert.equal(r.code, 0, r.stderr);
  assert.ok(prunes >= 1);
  const v = await mpkProcess(['verify', 'big:1'], env);
  assert.equal(v.code, 0, v.stdout + v.stderr);
});
