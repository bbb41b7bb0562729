import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { tempDir } from '../test-support/tmp.js';
import { HashFollower } from './hash-follower.js';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

test('give: large buffers that own their memory are moved, small ones and views copied, all hashed in order', async () => {
  const f = new HashFollower('/dev/null', 'sha256');
  const shared = randomBytes(300_000);
  const bufs = [
    Buffer.from(randomBytes(65536)), // owns its ArrayBuffer: moved
    Buffer.from(randomBytes(100)), // small: copied
    Buffer.from(randomBytes(200)),
    shared.subarray(1000, 120_000), // a view into a larger buffer: copied
    Buffer.from(randomBytes(40_000)), // owns its ArrayBuffer, over 32 KiB: moved
  ];
  const whole = Buffer.concat(bufs);
  f.give(bufs);
  f.give([Buffer.from(randomBytes(0))]);
  assert.deepEqual(bufs.map((b) => b.length), [0, 100, 200, 119_000, 0], 'moved buffers are detached here; the others untouched');
  const r = await f.digest(whole.length);
  assert.deepEqual(r, { digest: sha(whole), size: whole.length });
  f.close();
});

test('a worker that dies never holds the writer: not busy, the waiter woken, the digest an IO error', async (t) => {
  const missing = join(await tempDir(t), 'gone');
  const f = new HashFollower(missing, 'sha256');
  f.advance(10); // the worker reads the file back: it is not there, the worker fails
  const chunks = Array.from({ length: 12 }, () => Buffer.from(randomBytes(1024 * 1024)));
  f.give(chunks.slice(0, 10)); // 10 MiB out: busy until the worker answers, which it never will
  await new Promise<void>((resolve) => f.onRoom(resolve));
  assert.equal(f.busy, false);
  f.give(chunks.slice(10)); // ignored, no throw
  const back: Buffer[] = [];
  const mine = [Buffer.alloc(1024 * 1024, 1)];
  f.feed(mine, (b) => back.push(b));
  assert.deepEqual(back, mine, 'a buffer fed to a dead worker comes straight back to its owner');
  await assert.rejects(f.digest(10), (e: unknown) => (e as { code?: string }).code === 'IO');
  f.close();
});
