// What the benchmarks share: their command-line options, a scratch folder, medians and formats.
import { spawn } from 'node:child_process';
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

/**
 * `mpk serve ARGS --addr 127.0.0.1:0` as a child process, once it says where it listens:
 * `{ url, pid, output(), stop() }`; `live` (a Set) holds it until it is stopped.
 */
export async function spawnServe(args, live, env = {}) {
  const child = spawn(process.execPath, [MPK, 'serve', '--addr', '127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise((r) => child.once('exit', r));
  for (let i = 0; i < 400 && !/listening on/.test(out); i++) await new Promise((r) => setTimeout(r, 25));
  const url = /listening on (http:\/\/[0-9.:]+)/.exec(out)?.[1];
  if (!url) {
    child.kill('SIGKILL');
    throw new Error(`mpk serve did not start: ${out}`);
  }
  const srv = { url, pid: child.pid, output: () => out };
  srv.stop = async () => {
    srv.unwatch?.();
    process.kill(child.pid, 'SIGTERM');
    await exited;
    live.delete(srv);
  };
  live.add(srv);
  return srv;
}
