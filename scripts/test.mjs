#!/usr/bin/env node
// Runs every *.test.ts under src/ and test/ with node's built-in test runner (Node 20's --test takes
// paths, not globs). Extra arguments are passed to node --test (e.g. --test-name-pattern=store).
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const files = [];
const walk = (dir) => {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.ts')) files.push(relative(root, p));
  }
};
for (const d of ['src', 'test']) {
  try { walk(join(root, d)); } catch { /* folder absent */ }
}
const args = ['--import', 'tsx', '--test', '--test-concurrency=2', ...process.argv.slice(2), ...files];
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
