// The `mpk` command as users run it: bin/mpk.js on the bundle that `npm run build` makes
// (scripts/bundle.mjs). Bundled here into a temp copy of the package, so the test checks the
// sources of this checkout, not whatever dist/ an earlier build left.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, readdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir, writeTree } from '../test-support/tmp.js';
import { VERSION } from '../version.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

test('bin/mpk.js on the bundled command: --version, build, ls, inspect, and a command chunk per command', async (t) => {
  const pkg = await tempDir(t);
  const bundler = join(root, 'scripts', 'bundle.mjs');
  const { bundleCli } = (await import(bundler)) as { bundleCli(outdir: string): Promise<string> };
  const out = await bundleCli(join(pkg, 'dist', 'cli-bundle'));
  await mkdir(join(pkg, 'bin'));
  await copyFile(join(root, 'bin', 'mpk.js'), join(pkg, 'bin', 'mpk.js'));
  await symlink(join(root, 'node_modules'), join(pkg, 'node_modules'));
  const files = await readdir(out);
  assert.ok(files.includes('main.js') && files.includes('commands-table.js'), files.join(' '));
  assert.ok(files.some((f) => f.startsWith('chunk-')), 'commands are split into chunks, loaded when run');

  const mpk = (...args: string[]) => spawnSync(process.execPath, [join(pkg, 'bin', 'mpk.js'), ...args], { encoding: 'utf8', env: { ...process.env, MPK_HOME: join(pkg, 'home') } });
  const v = mpk('--version');
  assert.equal(v.status, 0, v.stderr);
  assert.equal(v.stdout.trim(), `mpk ${VERSION}`);

  const model = join(pkg, 'model');
  await writeTree(model, { 'config.json': '{"model_type":"llama"}', 'model.safetensors': 'weights', 'README.md': '# m\n' });
  const b = mpk('build', '-q', '-t', 'bundled:v1', model);
  assert.equal(b.status, 0, b.stderr);
  const ls = mpk('ls', '--json');
  assert.equal(ls.status, 0, ls.stderr);
  assert.match(ls.stdout, /bundled:v1|"bundled"/);
  const bad = mpk('inspect', 'nosuch:v1');
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /nosuch/, 'errors are reported as from the unbundled command');
});
