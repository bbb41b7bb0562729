import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { digestBytes, parseDigest, VerifyStream } from './digest.js';
import { hasErrorCode } from '../errors.js';

test('parseDigest accepts sha256 and sha512, refuses the rest', () => {
  assert.deepEqual(parseDigest(`sha256:${'0'.repeat(64)}`), { algorithm: 'sha256', hex: '0'.repeat(64) });
  assert.equal(parseDigest(`sha512:${'f'.repeat(128)}`).algorithm, 'sha512');
  for (const bad of ['sha256:abc', `sha256:${'A'.repeat(64)}`, `md5:${'0'.repeat(32)}`, 'nocolon', `sha256:${'0'.repeat(64)}/../x`, '']) {
    assert.throws(() => parseDigest(bad), (e: unknown) => hasErrorCode(e, 'INVALID_DIGEST'), bad);
  }
});

test('digestBytes matches node crypto', () => {
  assert.equal(digestBytes('hello'), `sha256:${createHash('sha256').update('hello').digest('hex')}`);
  assert.equal(digestBytes('hello', 'sha512'), `sha512:${createHash('sha512').update('hello').digest('hex')}`);
});

async function run(data: Buffer, expected: { digest: string; size: number }) {
  const out: Buffer[] = [];
  await pipeline(Readable.from([data.subarray(0, 3), data.subarray(3)]), new VerifyStream(expected), async (s: AsyncIterable<Buffer>) => {
    for await (const c of s) out.push(c);
  });
  return Buffer.concat(out);
}

test('VerifyStream passes good bytes and fails on wrong size or digest', async () => {
  const data = Buffer.from('some model bytes');
  const good = { digest: digestBytes(data), size: data.length };
  assert.deepEqual(await run(data, good), data);
  await assert.rejects(run(data, { ...good, size: data.length - 1 }), (e: unknown) => hasErrorCode(e, 'SIZE_MISMATCH'));
  await assert.rejects(run(data, { ...good, size: data.length + 1 }), (e: unknown) => hasErrorCode(e, 'SIZE_MISMATCH'));
  await assert.rejects(run(data, { digest: digestBytes('other'), size: data.length }), (e: unknown) => hasErrorCode(e, 'DIGEST_MISMATCH'));
  const sha512 = { digest: digestBytes(data, 'sha512'), size: data.length };
  assert.deepEqual(await run(data, sha512), data);
});
