import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { FileSource } from './file-source.js';
import { tempDir } from '../test-support/tmp.js';

async function fileOf(t: { after(fn: () => unknown): void }, bytes: Buffer): Promise<string> {
  const p = join(await tempDir(t), 'blob');
  writeFileSync(p, bytes);
  return p;
}

test('FileSource: the bytes from an offset, in chunks of the given size; a reader that recycles gets the same few buffers back', async (t) => {
  const bytes = randomBytes(10 * 4096 + 123);
  const path = await fileOf(t, bytes);
  const src = new FileSource(await open(path, 'r'), 0, 4096);
  const seen: Buffer[] = [];
  const buffers = new Set<ArrayBufferLike>();
  for await (const c of src) {
    seen.push(Buffer.from(c as Buffer)); // a copy: the chunk itself goes back
    buffers.add((c as Buffer).buffer);
    src.recycle(c as Buffer);
  }
  assert.deepEqual(Buffer.concat(seen), bytes);
  assert.ok(seen.slice(0, -1).every((c) => c.length === 4096), 'full chunks but the last');
  assert.ok(buffers.size <= 3, `${buffers.size} buffers for ${seen.length} chunks`);

  const tail = new FileSource(await open(path, 'r'), 40_000, 4096);
  const got: Buffer[] = [];
  for await (const c of tail) got.push(c as Buffer);
  assert.deepEqual(Buffer.concat(got), bytes.subarray(40_000));
  assert.ok(new Set(got.map((c) => c.buffer)).size === got.length, 'without recycling every chunk is its own buffer');
});

test('FileSource: a buffer of another size is not taken; destroy closes the file', async (t) => {
  const path = await fileOf(t, randomBytes(9000));
  const fh = await open(path, 'r');
  const src = new FileSource(fh, 0, 4096);
  src.recycle(Buffer.alloc(8192));
  const first = (await src[Symbol.asyncIterator]().next()).value as Buffer;
  assert.equal(first.buffer.byteLength, 4096, 'not the foreign 8 KiB buffer');
  src.destroy();
  await new Promise((r) => src.once('close', r));
  await assert.rejects(fh.stat(), /EBADF|closed/i);
});
