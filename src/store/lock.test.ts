import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { readFile, writeFile, access } from 'node:fs/promises';
import { withLock } from './lock.js';
import { hasErrorCode } from '../errors.js';
import { tempDir } from '../test-support/tmp.js';

test('withLock serialises critical sections', async (t) => {
  const lock = join(await tempDir(t), 'x.lock');
  let inside = 0;
  let maxInside = 0;
  await Promise.all(
    Array.from({ length: 10 }, () =>
      withLock(lock, async () => {
        maxInside = Math.max(maxInside, ++inside);
        await new Promise((r) => setTimeout(r, 2));
        inside--;
      }),
    ),
  );
  assert.equal(maxInside, 1);
  await assert.rejects(access(lock));
});

test('a lock left by a dead process is broken; a live one times out with LOCKED', async (t) => {
  const dir = await tempDir(t);
  const lock = join(dir, 'y.lock');
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
  await writeFile(lock, `${dead} ${hostname()}`);
  assert.equal(await withLock(lock, async () => 'ran'), 'ran');
  await writeFile(lock, `${process.pid} ${hostname()}`); // held by a live process (us)
  await assert.rejects(withLock(lock, async () => 'never', { timeoutMs: 100 }), (e: unknown) => hasErrorCode(e, 'LOCKED'));
  assert.equal(await readFile(lock, 'utf8'), `${process.pid} ${hostname()}`);
});
