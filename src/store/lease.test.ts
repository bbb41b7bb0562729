import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { liveLeasedDigests, openLease } from './lease.js';
import { tempDir } from '../test-support/tmp.js';

const d = (i: number) => `sha256:${String(i).padStart(64, '0')}`;

test('a lease: many digests in one write, each once; live leases are read back; gone once closed', async (t) => {
  const root = await tempDir(t);
  const lease = openLease(root);
  t.after(() => lease.close());
  assert.equal(existsSync(lease.path), false, 'nothing written before the first digest');
  lease.addAll([d(1), d(2), d(2), d(3)]);
  assert.deepEqual(readFileSync(lease.path, 'utf8').split('\n').filter(Boolean), [d(1), d(2), d(3)]);
  const size = statSync(lease.path).size;
  lease.add(d(2));
  lease.addAll([d(1), d(3)]);
  assert.equal(statSync(lease.path).size, size, 'held digests are not written again');
  lease.add(d(4));
  assert.deepEqual([...(await liveLeasedDigests(root))].sort(), [d(1), d(2), d(3), d(4)]);
  lease.close();
  assert.equal(existsSync(lease.path), false);
  assert.equal((await liveLeasedDigests(root)).size, 0);
  assert.throws(() => lease.add(d(5)), /closed/);
});
