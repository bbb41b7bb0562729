import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { placeNewFile } from './file-writer.js';
import { identityOf } from './verified.js';
import { tempDir } from '../test-support/tmp.js';

test('placeNewFile: the bytes land read-only at dest, the temp name is gone, the identity is the file at dest', async (t) => {
  const dir = await tempDir(t);
  const data = Buffer.from('{"a":1}');
  const id = await placeNewFile(join(dir, 'tmp1'), join(dir, 'blob1'), data, 0o444);
  assert.deepEqual(readFileSync(join(dir, 'blob1')), data);
  assert.equal(existsSync(join(dir, 'tmp1')), false);
  assert.equal(statSync(join(dir, 'blob1')).mode & 0o777, 0o444);
  assert.equal(identityOf(id), identityOf(statSync(join(dir, 'blob1'), { bigint: true })));
});

test('placeNewFile: only the view is written (not the buffer around it); many at once (the first on this thread, the rest on the worker), each identity right; a missing dest dir is made', async (t) => {
  const dir = await tempDir(t);
  const big = Buffer.alloc(64 * 1024, 0x61);
  big.write('hello', 1000);
  const view = big.subarray(1000, 1005);
  await placeNewFile(join(dir, 'tmp'), join(dir, 'sub', 'deeper', 'view'), view, 0o444);
  assert.equal(readFileSync(join(dir, 'sub', 'deeper', 'view'), 'utf8'), 'hello');
  const ids = await Promise.all(Array.from({ length: 300 }, (_, i) => placeNewFile(join(dir, `t${i}`), join(dir, `b${i}`), Buffer.from(`blob ${i}`), 0o444)));
  for (let i = 0; i < 300; i++) {
    assert.equal(readFileSync(join(dir, `b${i}`), 'utf8'), `blob ${i}`);
    assert.equal(identityOf(ids[i]!), identityOf(statSync(join(dir, `b${i}`), { bigint: true })));
  }
});

test('placeNewFile: an existing temp name is EEXIST (never written through); a failed rename leaves no temp file', async (t) => {
  const dir = await tempDir(t);
  writeFileSync(join(dir, 'taken'), 'someone else');
  await assert.rejects(placeNewFile(join(dir, 'taken'), join(dir, 'x'), Buffer.from('mine'), 0o444), (e: NodeJS.ErrnoException) => e.code === 'EEXIST');
  assert.equal(readFileSync(join(dir, 'taken'), 'utf8'), 'someone else');
  assert.equal(existsSync(join(dir, 'x')), false);
  // dest is a non-empty directory: the rename fails, and the temp file is removed.
  writeFileSync(join(dir, 'f'), '');
  await assert.rejects(placeNewFile(join(dir, 'tmp2'), join(dir, 'f', 'under-a-file'), Buffer.from('x'), 0o444), (e: NodeJS.ErrnoException) => typeof e.code === 'string');
  assert.equal(existsSync(join(dir, 'tmp2')), false);
});

test('placeNewFile: files asked for together go to the worker together; one that fails fails alone', async (t) => {
  const dir = await tempDir(t);
  // Past the files made on this thread, so these go to the worker, in one turn of the event loop.
  await Promise.all(Array.from({ length: 20 }, (_, i) => placeNewFile(join(dir, `w${i}`), join(dir, `wb${i}`), Buffer.from(`warm ${i}`), 0o444)));
  writeFileSync(join(dir, 't7'), 'taken');
  const results = await Promise.allSettled(Array.from({ length: 15 }, (_, i) => placeNewFile(join(dir, `t${i}`), join(dir, `b${i}`), Buffer.from(`blob ${i}`), 0o444)));
  results.forEach((r, i) => {
    if (i === 7) {
      assert.equal(r.status, 'rejected');
      assert.equal((r as PromiseRejectedResult).reason.code, 'EEXIST');
      assert.equal(readFileSync(join(dir, 't7'), 'utf8'), 'taken');
      assert.equal(existsSync(join(dir, 'b7')), false);
    } else {
      assert.equal(r.status, 'fulfilled');
      assert.equal(readFileSync(join(dir, `b${i}`), 'utf8'), `blob ${i}`);
      assert.equal(identityOf((r as PromiseFulfilledResult<Parameters<typeof identityOf>[0]>).value), identityOf(statSync(join(dir, `b${i}`), { bigint: true })));
    }
  });
});
