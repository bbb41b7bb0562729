import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Staging } from './staging.js';
import { hasErrorCode } from '../errors.js';
import { tempDir } from '../test-support/tmp.js';

test('a file where the target directory (or one above it) should be: named, with what to do, not a raw EEXIST', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'model.gguf');
  await writeFile(file, 'x');
  for (const target of [file, join(file, 'sub', 'deeper')]) {
    await assert.rejects(Staging.open(target), (e: unknown) => {
      assert.ok(hasErrorCode(e, 'ALREADY_EXISTS'), String(e));
      const msg = (e as Error).message;
      assert.equal(msg, `${file}: is a file, not a directory; cannot extract into ${target}`);
      assert.doesNotMatch(msg, /EEXIST|ENOTDIR|mkdir/);
      assert.match((e as { hint?: string }).hint ?? '', /name a directory to extract into \(it is created if missing\), or move .*model\.gguf out of the way/);
      return true;
    });
  }
  assert.deepEqual(await readdir(dir), ['model.gguf'], 'nothing created');
});
