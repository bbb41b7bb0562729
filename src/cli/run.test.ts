import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { mpk } from '../test-support/cli.js';
import { makeModelDir, tempDir } from '../test-support/tmp.js';
import { VERSION } from '../version.js';

const sha = async (p: string) => createHash('sha256').update(await readFile(p)).digest('hex');

test('--version matches package.json; --help lists the commands', async (t) => {
  const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8'));
  assert.equal(VERSION, pkg.version);
  const v = await mpk({}, '/', '--version');
  assert.equal(v.stdout, `mpk ${pkg.version}\n`);
  const h = await mpk({}, '/', '--help');
  for (const c of ['build', 'ls', 'inspect', 'tag', 'rm', 'prune', 'verify', 'extract', 'modelfile']) assert.match(h.stdout, new RegExp(`\\n  ${c} `));
  assert.match((await mpk({}, '/', 'build', '--help')).stdout, /Usage: mpk build/);
});

test('usage errors: one line, a hint, exit code 2', async () => {
  for (const argv of [['nosuch'], ['build'], ['build', '--nope', 'x'], ['ls', 'extra'], ['extract', 'a:1', '/tmp/x', '--type', 'weights']]) {
    const r = await mpk({ MPK_HOME: '/nonexistent-not-used' }, '/', ...argv);
    assert.equal(r.code, 2, argv.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^mpk: .*Hint: /);
  }
});

test('end to end: generate, build, ls, inspect, tag, extract byte for byte, verify, rm, prune', async (t) => {
  const home = await tempDir(t);
  const env = { MPK_HOME: home };
  const dir = await tempDir(t);
  const files = await makeModelDir(dir);
  const out = await tempDir(t);

  const gen = await mpk(env, dir, 'modelfile', 'generate', '.', '-o', 'Modelfile');
  assert.equal(gen.code, 0, gen.stderr);
  const text = await readFile(join(dir, 'Modelfile'), 'utf8');
  assert.match(text, /MODEL model\.safetensors/);
  assert.equal((await mpk(env, dir, 'modelfile', 'generate', '.', '-o', 'Modelfile')).code, 7, 'refuses to overwrite');

  const b = await mpk(env, dir, 'build', '-t', 'models/demo:v1', '--json', '.');
  assert.equal(b.code, 0, b.stderr);
  const built = JSON.parse(b.stdout);
  assert.match(built.digest, /^sha256:[0-9a-f]{64}$/);

  const ls = await mpk(env, dir, 'ls', '--json');
  const models = JSON.parse(ls.stdout);
  assert.equal(models.length, 1);
  assert.equal(models[0].reference, 'models/demo:v1');
  assert.equal(models[0].digest, built.digest);
  assert.match((await mpk(env, dir, 'ls')).stdout, /^REFERENCE\s+DIGEST\s+SIZE\s+FORMAT\s+PARAMS\s+QUANTIZATION\nmodels\/demo:v1 /);

  const insp = JSON.parse((await mpk(env, dir, 'inspect', 'models/demo:v1', '--json')).stdout);
  assert.equal(insp.manifest.artifactType, 'application/vnd.cncf.model.manifest.v1+json');
  assert.equal(insp.config.descriptor.family, 'llama');
  assert.equal(insp.files.length, Object.keys(files).length);
  const human = (await mpk(env, dir, 'inspect', 'models/demo:v1')).stdout;
  assert.match(human, /Family:\s+llama/);
  assert.match(human, /weight\s+293\.0 KiB\s+sha256:\w+\s+model\.safetensors/);

  assert.equal((await mpk(env, dir, 'tag', 'models/demo:v1', 'models/demo:latest')).code, 0);
  const ex = await mpk(env, dir, 'extract', 'models/demo:latest', out);
  assert.equal(ex.code, 0, ex.stderr);
  for (const f of Object.keys(files)) assert.equal(await sha(join(out, f)), await sha(join(dir, f)), f);

  const onlyWeights = await tempDir(t);
  assert.equal((await mpk(env, dir, 'extract', 'models/demo:v1', onlyWeights, '--type', 'weight', '--link')).code, 0);
  assert.deepEqual(await readdir(onlyWeights), ['model.safetensors']);
  assert.ok((await stat(join(onlyWeights, 'model.safetensors'))).nlink >= 2, 'hard-linked');

  assert.equal((await mpk(env, dir, 'verify')).code, 0);
  assert.equal((await mpk(env, dir, 'rm', 'models/demo:v1', 'models/demo:latest')).code, 0);
  const nf = await mpk(env, dir, 'inspect', 'models/demo:v1');
  assert.equal(nf.code, 3);
  assert.match(nf.stderr, /no such model.*Hint/);
  const pr = JSON.parse((await mpk(env, dir, 'prune', '--json')).stdout);
  assert.equal(pr.removed.length, Object.keys(files).length + 2);
});

test('Modelfile errors name file:line:column; integrity errors exit 4', async (t) => {
  const home = await tempDir(t);
  const dir = await tempDir(t);
  await makeModelDir(dir);
  await writeFile(join(dir, 'Modelfile'), 'NAME x\nMODLE model.safetensors\n');
  const r = await mpk({ MPK_HOME: home }, dir, 'build', '-t', 'x:1', '.');
  assert.equal(r.code, 2);
  assert.match(r.stderr, /Modelfile:2:1: .*MODEL/);
  await writeFile(join(dir, 'Modelfile'), 'MODEL model.safetensors\n');
  assert.equal((await mpk({ MPK_HOME: home }, dir, 'build', '-q', '-t', 'x:1', '.')).code, 0);
  const { chmod } = await import('node:fs/promises');
  const blobs = join(home, 'blobs', 'sha256');
  const insp = JSON.parse((await mpk({ MPK_HOME: home }, dir, 'inspect', 'x:1', '--json')).stdout);
  const weight = join(blobs, insp.files[0].digest.slice(7));
  await chmod(weight, 0o644);
  await writeFile(weight, 'rotten');
  const v = await mpk({ MPK_HOME: home }, dir, 'verify', 'x:1');
  assert.equal(v.code, 4);
  assert.match(v.stdout, new RegExp(`CORRUPT ${insp.files[0].digest}`));
  const out = await tempDir(t);
  const e = await mpk({ MPK_HOME: home }, dir, 'extract', 'x:1', out);
  assert.equal(e.code, 4, e.stderr);
  assert.deepEqual(await readdir(out), []);
});
