/**
 * Messages a new user judged unclear (issue 14): the doubled `mpk: mpk build:` prefix, "1 files",
 * "1 layers", parameter sizes printed three ways by `ls`; "did you mean" for mistyped commands
 * and flags.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mpk } from '../test-support/cli.js';
import { tempDir, writeTree } from '../test-support/tmp.js';
import { writeTinyLlama } from '../test-support/tiny-llama.js';

test('usage errors name their command once: `mpk: build: …`, never `mpk: mpk build: …`', async () => {
  const env = { MPK_HOME: '/nonexistent-not-used' };
  for (const [argv, re] of [
    [['build', '--nope', 'x'], /^mpk: build: unknown option '--nope'\. Hint: usage: mpk build /],
    [['build'], /^mpk: build: expected at least 1 argument, got 0\. Hint: usage: mpk build /],
    [['build', '.'], /^mpk: build: no model name given\. Hint: add -t NAME:TAG/],
    [['rm'], /^mpk: rm: expected at least 1 argument, got 0\. /],
    [['modelfile', 'make', '.'], /^mpk: modelfile: unknown subcommand "make"/],
    [['convert', 'a:1', '-t', 'b:1'], /^mpk: convert: --format is required/],
    [['import', 'docker', 'x'], /^mpk: import: unknown source "docker"/],
    [['login', 'localhost:5000'], /^mpk: login: no user name/],
  ] as const) {
    const r = await mpk(env, '/', ...argv);
    assert.equal(r.code, 2, argv.join(' '));
    assert.doesNotMatch(r.stderr, /mpk: mpk /, argv.join(' '));
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});

test('did you mean: a mistyped command, global option or flag gets the nearest one as the hint', async () => {
  const env = { MPK_HOME: '/nonexistent-not-used' };
  const cmd = await mpk(env, '/', 'biuld', '-t', 'x:1', '.');
  assert.equal(cmd.code, 2);
  assert.equal(cmd.stderr, 'mpk: unknown command "biuld". Hint: did you mean build?\n');
  assert.match((await mpk(env, '/', 'isnpect', 'x:1')).stderr, /Hint: did you mean inspect\?\n$/);
  assert.match((await mpk(env, '/', 'pul', 'x:1')).stderr, /Hint: did you mean pull\?\n$/);
  // nothing near: the list of commands
  assert.match((await mpk(env, '/', 'frobnicate')).stderr, /^mpk: unknown command "frobnicate"\. Hint: commands: build, modelfile, ls, /);
  assert.match((await mpk(env, '/', '--stor', '/tmp/x', 'ls')).stderr, /^mpk: unknown global option --stor\. Hint: did you mean --store\?/);
  assert.equal((await mpk(env, '/', '-x', 'ls')).stderr, "mpk: unknown global option -x. Hint: see 'mpk --help'\n");
  const proto = await mpk(env, '/', 'constructor');
  assert.deepEqual([proto.code, proto.stderr.split('.')[0]], [2, 'mpk: unknown command "constructor"']);
  const flag = await mpk(env, '/', 'build', '--tga', 'x:1', '.');
  assert.equal(flag.code, 2);
  assert.match(flag.stderr, /^mpk: build: unknown option '--tga'\. Hint: did you mean --tag\? usage: mpk build /);
  assert.match((await mpk(env, '/', 'extract', 'a:1', '/tmp/x', '--overwirte')).stderr, /did you mean --overwrite\?/);
  assert.doesNotMatch((await mpk(env, '/', 'ls', '--zzzzzz')).stderr, /did you mean/);
  // `mpk help COMMAND` is `mpk COMMAND --help`, as with docker and git
  const help = await mpk(env, '/', 'help', 'build');
  assert.equal(help.code, 0);
  assert.equal(help.stdout, (await mpk(env, '/', 'build', '--help')).stdout);
  assert.match((await mpk(env, '/', '--help')).stdout, /\n  completion +Print a shell completion script/);
});

test('counts read "1 file", "1 layer", "1 problem": build, extract, convert, verify', async (t) => {
  const dir = await tempDir(t);
  const env = { MPK_HOME: join(dir, 'store') };
  const gguf = join(dir, 'tiny.gguf');
  await writeTinyLlama(gguf);
  const b = await mpk(env, dir, 'build', '-t', 'models/tiny:1', gguf);
  assert.equal(b.code, 0, b.stderr);
  assert.match(b.stdout, /^Built models\/tiny:1: 1 file, /);
  const x = await mpk(env, dir, 'extract', 'models/tiny:1', join(dir, 'out'));
  assert.match(x.stdout, /^Extracted 1 file, /);
  const c = await mpk(env, dir, 'convert', 'models/tiny:1', '--format', 'docker', '-t', 'docker/tiny:1');
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stdout, /\(docker, 1 layer, config /);
  const insp = JSON.parse((await mpk(env, dir, 'inspect', '--json', 'models/tiny:1')).stdout) as { manifest: { layers: Array<{ digest: string }> } };
  const blob = join(env.MPK_HOME, 'blobs', 'sha256', insp.manifest.layers[0]!.digest.slice(7));
  await chmod(blob, 0o644);
  await writeFile(blob, 'rotten');
  const v = await mpk(env, dir, 'verify', 'models/tiny:1');
  assert.equal(v.code, 4);
  assert.match(v.stdout, /: 1 problem\n$/);
});

test('ls shows parameter sizes one way (5M, 1.23M, 500M) whatever the configs wrote; --json keeps their text', async (t) => {
  const dir = await tempDir(t);
  const env = { MPK_HOME: join(dir, 'store') };
  await writeTree(dir, { 'a.bin': 'x' });
  const sizes: Record<string, string> = { 'm/a:1': '5M', 'm/b:1': '5.00M', 'm/c:1': '"1.23 M"', 'm/d:1': '0.5B', 'm/e:1': '8x7B' };
  for (const [ref, size] of Object.entries(sizes)) {
    await writeFile(join(dir, 'Modelfile'), `PARAMSIZE ${size}\nMODEL a.bin\n`);
    const b = await mpk(env, dir, 'build', '-q', '-t', ref, '.');
    assert.equal(b.code, 0, b.stderr);
  }
  const rows = (await mpk(env, dir, 'ls')).stdout.trim().split('\n').slice(1);
  const params = Object.fromEntries(rows.map((r) => r.split(/\s{3,}/)).map((c) => [c[0], c[4]]));
  assert.deepEqual(params, { 'm/a:1': '5M', 'm/b:1': '5M', 'm/c:1': '1.23M', 'm/d:1': '500M', 'm/e:1': '8x7B' });
  const json = JSON.parse((await mpk(env, dir, 'ls', '--json')).stdout) as Array<{ reference: string; paramSize: string }>;
  assert.equal(json.find((m) => m.reference === 'm/b:1')?.paramSize, '5.00M');
  assert.match((await mpk(env, dir, 'inspect', 'm/c:1')).stdout, /\nParameters:\s+1\.23M\n/);
});
