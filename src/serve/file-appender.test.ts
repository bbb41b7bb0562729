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
  let given = 0;
  for (const c of chunks) {
    given += c.length;
    if (!a.write(c)) {
      pauses++;
      await new Promise<void>((r) => a.onDrain(r));
      assert.ok(given - a.written < 4 * 1048576, 'drained: under 4 MiB queued or being written');
    }
  }
  assert.ok(pauses > 0, 'a 6.25 MiB burst written without waiting fills the queue');
  assert.equal(await a.end(), chunks.length * 65536);
  assert.deepEqual(await readFile(path), Buffer.concat([Buffer.from('kept:'), ...chunks]));
});

test('onWritten gets each batch once it is in the file, in order, and nothing twice', async (t) => {
  const path = join(await tempDir(t), 'data');
  await writeFile(path, '');
  const a = await FileAppender.open(path);
  const chunks = Array.from({ length: 40 }, (_, i) => Buffer.alloc(65536, i));
  const seen: Buffer[] = [];
  const writtenThen: number[] = [];
  a.onWritten = (bufs) => {
    seen.push(Buffer.concat(bufs));
    writtenThen.push(a.written);
  };
  for (const c of chunks) if (!a.write(c)) await new Promise<void>((r) => a.onDrain(r));
  await a.end();
  assert.ok(seen.length > 1, 'in batches');
  let sum = 0;
  for (const [i, b] of seen.entries()) assert.equal(writtenThen[i], (sum += b.length), 'handed over only once written');
  assert.deepEqual(Buffer.concat(seen), Buffer.concat(chunks));
});

test('a failed write (ENOSPC: /dev/full) reaches onFailure even while the source waits for a drain; write and end throw it', { skip: process.platform !== 'linux' && '/dev/full is Linux' }, async () => {
  const a = await FileAppender.open('/dev/full');
  const failed = new Promise<unknown>((resolve) => (a.onFailure = resolve));
  let drained = false;
  for (let i = 0; i < 80 && a.write(randomBytes(65536)); i++);
  a.onDrain(() => (drained = true)); // paused past 4 MiB: no drain will come
  const e = (await Promise.race([failed, new Promise((r) => setTimeout(() => r('no failure reported'), 5000).unref())])) as NodeJS.ErrnoException;
  assert.equal(e.code, 'ENOSPC');
  assert.equal(drained, false);
  assert.throws(() => a.write(Buffer.from('more')), /ENOSPC/);
  await assert.rejects(a.end(), /ENOSPC/);
});
