import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WholeBody } from './whole-body.js';
import { gatherVerified } from '../store/gather.js';
import { digestBytes } from '../oci/digest.js';
import { hasErrorCode } from '../errors.js';

test('a WholeBody reads as a stream, and the store takes its bytes verified without reading it', async () => {
  const bytes = Buffer.from('a small blob, whole in memory');
  const chunks: Buffer[] = [];
  for await (const c of new WholeBody(bytes)) chunks.push(c as Buffer);
  assert.deepEqual(Buffer.concat(chunks), bytes);
  const expected = { digest: digestBytes(bytes), size: bytes.length };
  assert.deepEqual(await gatherVerified(expected, new WholeBody(bytes)), bytes);
  await assert.rejects(gatherVerified(expected, new WholeBody(Buffer.from('a small blob, whole in memorY'))), (e) => hasErrorCode(e, 'DIGEST_MISMATCH'));
  await assert.rejects(gatherVerified(expected, new WholeBody(bytes.subarray(1))), (e) => hasErrorCode(e, 'SIZE_MISMATCH'));
});
