/**
 * Ollama models directories that are not what they should be: a FIFO where a blob or a manifest
 * should be (refused at once, never waited on), an oversized or malformed manifest (bounded, a
 * hint), and, on export, files of the right name and size but other bytes (replaced, not trusted).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildModel } from '../build/build-model.js';
import { PackError, type ErrorCode } from '../errors.js';
import { parseModelfile } from '../modelfile/parse.js';
import { digestBytes } from '../oci/digest.js';
import { LocalStore } from '../store/store.js';
import { mkfifo, settles } from '../test-support/fifo.js';
import { fakeGguf } from '../test-support/interop.js';
import { blobPath, layOut } from '../test-support/ollama-dir.js';
import { tempDir, writeTree } from '../test-support/tmp.js';
import { exportOllama } from './export-ollama.js';
import { importOllama } from './import-ollama.js';

async function openStore(t: TestContext): Promise<LocalStore> {
  const store = await LocalStore.open(await tempDir(t, 'mpk-store-'));
  t.after(() => store.close());
  return store;
}

/** The PackError `p` rejects with (within 5 s: a FIFO waited on fails the test instead of hanging it). */
async function refusal(p: Promise<unknown>, fifos: string[], code: ErrorCode, re: RegExp): Promise<PackError> {
  const r = await settles(p, fifos);
  assert.notEqual(r, 'hung', 'waited on a FIFO');
  assert.ok(r !== 'hung' && !r.ok, 'refused');
  const e = r.error;
  assert.ok(e instanceof PackError, String(e));
  assert.equal(e.code, code, e.message);
  assert.match(e.message, re);
  assert.ok(e.hint && !e.message.includes('\n'), `one line with a hint: ${e.message}`);
  return e;
}

test('import: a FIFO where a blob should be is refused at once; a symbolic link to a good blob is copied', async (t) => {
  const o = await layOut(t, 31);
  const store = await openStore(t);
  const [params] = [...o.blobs.entries()].find(([, b]) => b.toString().includes('temperature'))!;
  const p = blobPath(o.dir, params);
  const real = join(await tempDir(t), 'params');
  await writeFile(real, o.blobs.get(params)!);
  await rm(p);
  mkfifo(p);
  await refusal(importOllama(store, 'tiny', { modelsDir: o.dir }), [p], 'CORRUPT', /sha256-[0-9a-f]{64}: Ollama blob is corrupt \(not a regular file\)/);
  assert.deepEqual(await readdir(join(store.root, 'blobs', 'sha256')).catch(() => []), [], 'nothing stored');

  await rm(p);
  await symlink(real, p);
  const r = await importOllama(store, 'tiny', { modelsDir: o.dir });
  assert.equal(r.blobs.find((b) => b.digest === params)!.how, 'copied', 'a link is copied (link(2) would link the link)');
  assert.deepEqual(new Set(r.blobs.filter((b) => b.digest !== params).map((b) => b.how)), new Set(['linked']));
});

test('import: the manifest is read without blocking and never past 4 MiB; a malformed one says what to do', async (t) => {
  const o = await layOut(t, 32);
  const store = await openStore(t);
  await rm(o.manifestPath);
  mkfifo(o.manifestPath);
  await refusal(importOllama(store, 'tiny', { modelsDir: o.dir }), [o.manifestPath], 'IO', /manifests\/registry\.ollama\.ai\/library\/tiny\/latest: not a regular file$/);

  await rm(o.manifestPath);
  await writeFile(o.manifestPath, '');
  await truncate(o.manifestPath, 5 * 1024 * 1024); // sparse: nothing is read
  await refusal(importOllama(store, 'tiny', { modelsDir: o.dir }), [], 'SIZE_EXCEEDS_LIMIT', /Ollama manifest of 5242880 bytes exceeds the 4194304-byte limit/);

  await writeFile(o.manifestPath, '{"schemaVersion": 2,');
  await refusal(importOllama(store, 'tiny', { modelsDir: o.dir }), [], 'INVALID_MANIFEST', /latest: not JSON/);
});

/** A ModelPack GGUF model in a store, exported once to a fresh models dir. */
async function exported(t: TestContext) {
  const store = await openStore(t);
  const dir = await tempDir(t);
  const gguf = fakeGguf(41, 50_000);
  await writeTree(dir, { 'tiny.gguf': gguf, LICENSE: 'MIT\n' });
  await buildModel(store, { contextDir: dir, reference: 'models/tiny:1', modelfile: parseModelfile('ARCH llama\nMODEL tiny.gguf\nDOC LICENSE\n') });
  const models = await tempDir(t, 'mpk-ollama-');
  const first = await exportOllama(store, 'models/tiny:1', 'tiny:q4', { modelsDir: models });
  return { store, models, gguf, first };
}

test('export: a blob or config of the right name and size but other bytes is replaced, not trusted on its size', async (t) => {
  const { store, models, gguf, first } = await exported(t);
  const manifest = JSON.parse(await readFile(first.manifestPath, 'utf8')) as { config: { digest: string } };
  const weight = blobPath(models, digestBytes(gguf));
  const config = blobPath(models, manifest.config.digest);
  const goodConfig = await readFile(config);
  for (const p of [weight, config]) {
    const bad = Buffer.from(await readFile(p));
    bad[bad.length - 1] = bad[bad.length - 1]! ^ 0xff;
    await rm(p);
    await writeFile(p, bad); // same size, other bytes, another inode
  }
  const again = await exportOllama(store, 'models/tiny:1', 'tiny:q4', { modelsDir: models });
  assert.deepEqual(again.digest, first.digest);
  assert.equal(again.blobs.find((b) => b.digest === digestBytes(gguf))!.how, 'linked');
  assert.ok((await readFile(weight)).equals(gguf), 'the weight holds the model again');
  assert.ok((await readFile(config)).equals(goodConfig), 'the config holds its bytes again');
  const third = await exportOllama(store, 'models/tiny:1', 'tiny:q4', { modelsDir: models });
  assert.deepEqual(new Set(third.blobs.map((b) => b.how)), new Set(['present']), 'a correct directory is left alone');
});

test('export: a FIFO where the manifest goes is a different model (refused without --force, replaced with it), never waited on', async (t) => {
  const { store, models, first } = await exported(t);
  const target = first.manifestPath.replace(/q4$/, 'q8');
  mkfifo(target);
  await refusal(exportOllama(store, 'models/tiny:1', 'tiny:q8', { modelsDir: models }), [target], 'ALREADY_EXISTS', /tiny:q8: Ollama already has a different model of that name/);
  const r = await settles(exportOllama(store, 'models/tiny:1', 'tiny:q8', { modelsDir: models, force: true }), [target]);
  assert.ok(r !== 'hung' && r.ok, 'written with --force');
  assert.ok((await readFile(target)).equals(await readFile(first.manifestPath)));
});
