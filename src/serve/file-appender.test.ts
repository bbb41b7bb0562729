import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from '../test-support/tmp.js';
import { FileAppender } from './file-appender.js';

test('chunks are appended in order after what the file held; the queue asks for a pause past 4 MiB', async (t) => {
  const path = join(await tempDir(t), 'data');
  await writeFile(path, 'kept:');
  const a = await FileAppender.open(path);
  const chunks = Array.from({ length: 100 }, () => randomBytes(65536));
  let pauses = 0;
  for (const c of chunks) {
    if (!a.write(c)) {
      pauses++;
      assert.ok(a.unwritten().length > 0);
      await new Promise<void>((r) => a.onDrain(r));
    }
  }
  assert.ok(pauses > 0, 'a 6.25 MiB burst written without waiting fills the queue');
  assert.equal(await a.end(), chunks.length * 65536);
  assert.deepEqual(await readFile(path), Buffer.concat([Buffer.from('kept:'), ...chunks]));
});

test('unwritten() lists the bytes after `written`, in order', async (t) => {
  const path = join(await tempDir(t), 'data');
  await writeFile(path, '');
  const a = await FileAppender.open(path);
  const chunks = Array.from({ length: 40 }, (_, i) => Buffer.alloc(65536, i));
  for (const c of chunks) a.write(c);
  const seen = Buffer.concat(a.unwritten());
  assert.deepEqual(seen, Buffer.concat(chunks).subarray(a.written), 'written + unwritten = everything queued');
  await a.end();
  assert.deepEqual(a.unwritten(), []);
});
