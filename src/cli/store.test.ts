/**
 * `--store DIR` (issue 14, item 10): a non-empty folder that is not a store is refused with
 * nothing written; a new store is announced on stderr, once; an existing OCI image layout is used.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalStore } from '../store/store.js';
import { mpk } from '../test-support/cli.js';
import { writeImageLayout } from '../test-support/image-layout.js';
import { makeModelDir, tempDir } from '../test-support/tmp.js';

test('--store refuses a model folder (or any non-empty folder that is not a store) and a file, writing nothing', async (t) => {
  const models = await tempDir(t);
  await makeModelDir(models);
  const before = (await readdir(models)).sort();
  const r = await mpk({}, models, '--store', '.', 'ls');
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^mpk: \/\S+: is not an mpk store and is not empty \(it holds README\.md, config\.json, data and 3 more\); refusing to write a store into it\. Hint: name a new or empty folder, or an existing store/);
  assert.deepEqual((await readdir(models)).sort(), before, 'no oci-layout, index.json or blobs/ written');
  const file = join(models, 'README.md');
  const f = await mpk({}, models, '--store', file, 'ls');
  assert.equal(f.code, 2, f.stderr);
  assert.match(f.stderr, /README\.md: is a file, not a store folder/);
  // The library refuses too.
  await assert.rejects(LocalStore.open(models), (e: unknown) => (e as { code?: string }).code === 'USAGE');
});

test('a new store is announced once (stderr, also with --json); empty folders, stores and OCI layouts are used', async (t) => {
  const base = await tempDir(t);
  const r = await mpk({}, base, '--store', 'typo/store', 'ls', '--json');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, `mpk: created a new store at ${join(base, 'typo', 'store')}\n`, 'relative to the working directory');
  assert.equal(r.stdout, '[]\n');
  const again = await mpk({}, base, '--store', 'typo/store', 'ls');
  assert.equal(again.stderr, '', 'said once');

  const empty = join(base, 'empty');
  await mkdir(empty);
  assert.match((await mpk({ MPK_HOME: empty }, base, 'ls')).stderr, /created a new store at .*empty\n$/);

  // mpk serve's default root (STORE/registry) may come first; a store cut short holds only blobs/.
  const served = join(base, 'served');
  await mkdir(join(served, 'registry'), { recursive: true });
  await mkdir(join(served, 'blobs', 'sha256'), { recursive: true });
  assert.equal((await mpk({ MPK_HOME: served }, base, 'ls')).code, 0);

  // An OCI image layout written by another tool is a store: used as it is, not "created".
  const layout = join(base, 'layout');
  await writeImageLayout(layout);
  await writeFile(join(layout, 'NOTES.txt'), 'a layout may hold other files');
  const l = await mpk({}, base, '--store', layout, 'ls', '-q');
  assert.equal(l.code, 0, l.stderr);
  assert.equal(l.stderr, '');
  assert.equal(l.stdout, 'img\n');

  const fresh = await LocalStore.open(join(base, 'lib'));
  fresh.close();
  const existing = await LocalStore.open(join(base, 'lib'));
  existing.close();
  assert.deepEqual([fresh.created, existing.created], [true, false], 'the library says whether it created the store');
});
