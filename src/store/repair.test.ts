/**
 * Issue 14, item 7, through the CLI: a user edits a file extracted with `--link` (the store's own
 * blob) and a small blob gets a flipped byte; `mpk pull` fetches them again and `mpk build` of
 * the unchanged files rebuilds them, instead of "already there". `extract --link` itself does not
 * make the linked blobs look changed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestBytes } from '../oci/digest.js';
import { mpk } from '../test-support/cli.js';
import { startTestServer } from '../test-support/serve.js';
import { tempDir, writeTree } from '../test-support/tmp.js';
import { LocalStore } from './store.js';
import { identityOf } from './verified.js';

/** A model with a 2 MiB weight (read on its own) and small files (read in batches by the workers). */
async function modelDir(t: Parameters<typeof tempDir>[0]): Promise<{ dir: string; weight: Buffer; config: Buffer }> {
  const dir = await tempDir(t);
  const weight = Buffer.alloc(2 * 1024 * 1024);
  for (let i = 0; i < weight.length; i++) weight[i] = (i * 131) & 0xff;
  const config = Buffer.from(JSON.stringify({ model_type: 'llama' }));
  await writeTree(dir, { 'model.bin': weight, 'config.json': config, 'README.md': '# m\n' });
  await writeFile(join(dir, 'Modelfile'), 'MODEL model.bin\nCONFIG config.json\nDOC README.md\n');
  return { dir, weight, config };
}

/** Edits a file in place (same inode): an editor writing through the hard link. */
async function editInPlace(path: string, at: number): Promise<void> {
  await chmod(path, 0o644);
  const b = await readFile(path);
  b[at] = b[at]! ^ 0xff;
  await writeFile(path, b);
}

async function blobBytes(home: string, digest: string): Promise<Buffer> {
  const store = await LocalStore.open(home);
  try {
    return await readFile(store.blobs.path(digest));
  } finally {
    store.close();
  }
}

async function recordMatches(home: string, digest: string): Promise<boolean> {
  const store = await LocalStore.open(home);
  try {
    return (await store.blobs.verified!.get(digest)) === identityOf(await stat(store.blobs.path(digest), { bigint: true }));
  } finally {
    store.close();
  }
}

test('pull repairs blobs changed behind the store (an edit through extract --link, a flipped byte)', async (t) => {
  const server = await startTestServer(t);
  const { dir, weight, config } = await modelDir(t);
  const ref = `${server.host}/models/m:1`;
  const built = { MPK_HOME: await tempDir(t) };
  assert.equal((await mpk(built, dir, 'build', '-t', ref, '.')).code, 0);
  const pushed = await mpk(built, dir, 'push', ref);
  assert.equal(pushed.code, 0, pushed.stderr);

  const env = { MPK_HOME: await tempDir(t) };
  assert.equal((await mpk(env, dir, 'pull', ref)).code, 0);
  const out = await tempDir(t);
  const x = await mpk(env, dir, 'extract', ref, out, '--link');
  assert.equal(x.code, 0, x.stderr);
  assert.equal((await stat(join(out, 'model.bin'))).ino, (await stat(join(env.MPK_HOME, 'blobs', 'sha256', digestBytes(weight).slice(7)))).ino, 'linked');
  assert.ok(await recordMatches(env.MPK_HOME, digestBytes(weight)), 'extract --link left the linked blob verified (no rehash on the next pull)');

  await editInPlace(join(out, 'model.bin'), 1000); // the user edits the extracted weights
  await editInPlace(join(env.MPK_HOME, 'blobs', 'sha256', digestBytes(config).slice(7)), 0); // a flipped byte
  const again = await mpk(env, dir, 'pull', ref, '--json');
  assert.equal(again.code, 0, again.stderr);
  const result = JSON.parse(again.stdout.trim().split('\n').at(-1)!);
  assert.equal(result.transferred, 2, `fetched the two changed blobs again: ${again.stdout}`);
  assert.deepEqual(await blobBytes(env.MPK_HOME, digestBytes(weight)), weight);
  assert.deepEqual(await blobBytes(env.MPK_HOME, digestBytes(config)), config);
  assert.equal((await mpk(env, dir, 'verify')).code, 0);
  assert.notDeepEqual(await readFile(join(out, 'model.bin')), weight, "the user's edited file is left as it is, no longer the blob");
});

test('build of unchanged files rebuilds blobs changed behind the store (digest cache hits, large and small)', async (t) => {
  const { dir, weight, config } = await modelDir(t);
  const env = { MPK_HOME: await tempDir(t) };
  assert.equal((await mpk(env, dir, 'build', '-t', 'm:1', '.')).code, 0);
  const out = await tempDir(t);
  assert.equal((await mpk(env, dir, 'extract', 'm:1', out, '--link')).code, 0);
  await editInPlace(join(out, 'model.bin'), 5);
  await editInPlace(join(env.MPK_HOME, 'blobs', 'sha256', digestBytes(config).slice(7)), 2);
  const b = await mpk(env, dir, 'build', '-t', 'm:1', '.', '--json');
  assert.equal(b.code, 0, b.stderr);
  assert.equal(JSON.parse(b.stdout).filesRead, 2, 'the two files whose blobs changed were read again, the third not');
  assert.deepEqual(await blobBytes(env.MPK_HOME, digestBytes(weight)), weight);
  assert.deepEqual(await blobBytes(env.MPK_HOME, digestBytes(config)), config);
  assert.equal((await mpk(env, dir, 'verify')).code, 0);
  // And a build that reads everything (--no-cache) repairs a small blob too, not "already there".
  await editInPlace(join(env.MPK_HOME, 'blobs', 'sha256', digestBytes(config).slice(7)), 3);
  assert.equal((await mpk(env, dir, 'build', '-t', 'm:1', '.', '--no-cache')).code, 0);
  assert.deepEqual(await blobBytes(env.MPK_HOME, digestBytes(config)), config);
});
