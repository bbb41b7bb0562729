/**
 * Stores and built models for transfer tests: a temp store closed after the test, a model built
 * from makeModelDir (or given files), and a check that an extracted model has the source's bytes.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildModel, type BuildResult } from '../build/build-model.js';
import { extractModel } from '../extract/extract.js';
import { LocalStore } from '../store/store.js';
import { makeModelDir, tempDir, writeTree } from './tmp.js';

type T = TestContext;

export async function openStore(t: T): Promise<LocalStore> {
  const store = await LocalStore.open(await tempDir(t));
  t.after(() => store.close());
  return store;
}

/** A store holding a model built from makeModelDir (or the given files) as `name:1`. */
export async function builtModel(t: T, seed = 'm', files?: Record<string, string | Uint8Array>): Promise<{ store: LocalStore; dir: string; built: BuildResult; ref: string }> {
  const dir = await tempDir(t);
  if (files) await writeTree(dir, files);
  else await makeModelDir(dir, seed);
  const store = await openStore(t);
  const ref = `local/${seed}:1`;
  const built = await buildModel(store, { contextDir: dir, reference: ref });
  return { store, dir, built, ref };
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Every file extracted from `store`'s `ref` has the bytes of the same file under `srcDir`. */
export async function assertSameFiles(t: T, store: LocalStore, ref: string, srcDir: string, expectCount: number): Promise<void> {
  const out = await tempDir(t);
  const r = await extractModel(store, ref, out);
  assert.equal(r.files.length, expectCount);
  for (const f of r.files) {
    const rel = f.path;
    assert.equal(sha(await readFile(join(out, rel))), sha(await readFile(join(srcDir, rel))), rel);
  }
}
