/**
 * Resumable ingest of big blobs: a download from zero is hashed inline before each write; a kept
 * prefix of 16 MiB or more (left by a killed pull) is re-hashed on the worker while only the rest
 * is asked for; a kept prefix that is wrong is dropped and the blob fetched again from zero.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { LocalStore } from './store.js';
import type { Descriptor } from '../oci/descriptor.js';
import { tempDir } from '../test-support/tmp.js';

const MiB = 1024 * 1024;
const blob = Buffer.alloc(20 * MiB + 777);
for (let i = 0; i + 4 <= blob.length; i += 4096) blob.writeUInt32LE(i ^ 0x5a5a5a5a, i);
const desc: Descriptor = { mediaType: 'application/octet-stream', digest: `sha256:${createHash('sha256').update(blob).digest('hex')}`, size: blob.length };

/** A source that serves the blob from any offset, in 256 KiB chunks, and records the offsets asked for. */
function source(): { asked: number[]; open: (offset: number) => Promise<Readable> } {
  const asked: number[] = [];
  return {
    asked,
    open: async (offset) => {
      asked.push(offset);
      const parts: Buffer[] = [];
      for (let at = offset; at < blob.length; at += 256 * 1024) parts.push(blob.subarray(at, Math.min(blob.length, at + 256 * 1024)));
      return Readable.from(parts);
    },
  };
}

async function storeWithPartial(t: TestContext, prefix?: Buffer): Promise<LocalStore> {
  const store = await LocalStore.open(await tempDir(t));
  t.after(() => store.close());
  if (prefix) {
    const dir = join(store.root, 'ingest', 'partial');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, `sha256-${desc.digest.slice(7)}`), prefix);
  }
  return store;
}

const stored = (store: LocalStore) => readFile(join(store.root, 'blobs', 'sha256', desc.digest.slice(7)));

test('a big download from zero is verified inline and stored', async (t) => {
  const store = await storeWithPartial(t);
  const src = source();
  await store.pushFrom(desc, src.open);
  assert.deepEqual(src.asked, [0]);
  assert.ok((await stored(store)).equals(blob));
});

test('a kept prefix of 17 MiB is re-hashed (on the worker) and only the rest is fetched', async (t) => {
  const store = await storeWithPartial(t, blob.subarray(0, 17 * MiB));
  const src = source();
  await store.pushFrom(desc, src.open);
  assert.deepEqual(src.asked, [17 * MiB]);
  assert.ok((await stored(store)).equals(blob));
});

test('a kept prefix of 17 MiB with a wrong byte is dropped: fetched again from zero, stored right', async (t) => {
  const bad = Buffer.from(blob.subarray(0, 17 * MiB));
  bad[12345] = bad[12345]! ^ 0xff;
  const store = await storeWithPartial(t, bad);
  const src = source();
  await store.pushFrom(desc, src.open);
  assert.deepEqual(src.asked, [17 * MiB, 0]);
  assert.ok((await stored(store)).equals(blob));
});
