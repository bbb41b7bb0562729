// What the benchmarks share: their command-line options, a scratch folder, medians and formats.
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';

const args = process.argv.slice(2);

/** The value after `--name`, else `def`. */
export const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
/** Whether the bare flag `--name` was given. */
export const flag = (name) => args.includes(`--${name}`);

/** A fresh scratch folder under `--dir` (default /tmp). */
export const scratch = (prefix) => mkdtempSync(join(opt('dir', '/tmp'), prefix));

/** This checkout, the mpk command in it, and the peer scripts beside it. */
export const root = new URL('..', import.meta.url).pathname;
export const MPK = join(root, 'bin', 'mpk.js');
export const PEERS = join(root, '..', 'shared', 'peers');

export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
export const fmt = (ms) => `${(ms / 1000).toFixed(2)} s`;
export const mib = (kb) => `${(kb / 1024).toFixed(0)} MiB`;
