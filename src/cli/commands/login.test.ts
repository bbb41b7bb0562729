/**
 * `mpk login` on a terminal asks for the password without echo (script(1) gives mpk a
 * pseudo-terminal); Ctrl-C cancels and saves nothing; off a terminal, with neither
 * --password-stdin nor -p, it is a usage error pointing at --password-stdin. --json on login/logout.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { mpkWith } from '../../test-support/cli.js';
import { hasCommand } from '../../test-support/peers.js';
import { startTestServer } from '../../test-support/serve.js';
import { tempDir } from '../../test-support/tmp.js';

const BIN = new URL('../../test-support/mpk-bin.ts', import.meta.url).pathname;
const PASSWORD = 'Tr0ub4dor-never-echoed';

async function registry(t: { after(fn: () => unknown): void }): Promise<{ host: string; env: NodeJS.ProcessEnv; cfg: string }> {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'htpasswd'), `alice:${bcrypt.hashSync(PASSWORD, 4)}\n`);
  const s = await startTestServer(t, { htpasswd: join(dir, 'htpasswd') });
  const cfg = join(dir, 'docker');
  return { host: s.host, env: { DOCKER_CONFIG: cfg, MPK_HOME: join(dir, 'store'), HOME: dir, PATH: process.env.PATH }, cfg };
}

/** mpk on a pseudo-terminal: what the terminal showed, keys to type, the exit code. */
function onTerminal(t: { after(fn: () => unknown): void }, env: NodeJS.ProcessEnv, args: string[]) {
  const cmd = [process.execPath, '--import', 'tsx', BIN, ...args].map((s) => `'${s}'`).join(' ');
  const child = spawn('script', ['-qfec', cmd, '/dev/null'], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let screen = '';
  child.stdout.on('data', (d) => (screen += d));
  child.stderr.on('data', (d) => (screen += d));
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return {
    screen: () => screen,
    type: (s: string) => void child.stdin.write(s),
    exit,
    async waitFor(re: RegExp, ms = 20_000) {
      const deadline = Date.now() + ms;
      while (!re.test(screen)) {
        if (child.exitCode !== null) throw new Error(`exited (${child.exitCode}) before ${re}: ${JSON.stringify(screen)}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${re}: ${JSON.stringify(screen)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

function needsScript(t: { skip(msg: string): void }): boolean {
  if (hasCommand('script')) return true;
  if (process.env.CI === 'true') throw new Error('CI: script (bsdutils) is not installed');
  t.skip('script (bsdutils) is not installed: it gives mpk a terminal');
  return false;
}

test('mpk login HOST -u USER on a terminal: asks for the password, never echoes it, saves the login', async (t) => {
  if (!needsScript(t)) return;
  const reg = await registry(t);
  const c = onTerminal(t, reg.env, ['login', reg.host, '-u', 'alice']);
  await c.waitFor(/Password for alice@[^:]+:\d+: $/);
  // typed in pieces, with a wrong key taken back, as a person types
  c.type(PASSWORD.slice(0, 5));
  c.type('X\x7f');
  c.type(`${PASSWORD.slice(5)}\r`);
  assert.equal(await c.exit, 0, c.screen());
  assert.match(c.screen(), /Login succeeded: 127\.0\.0\.1:\d+ \(saved in config\.json\)/);
  assert.ok(!c.screen().includes(PASSWORD.slice(0, 5)), `the password appeared on the terminal: ${JSON.stringify(c.screen())}`);
  const cfg = JSON.parse(await readFile(join(reg.cfg, 'config.json'), 'utf8')) as { auths: Record<string, { auth: string }> };
  assert.equal(cfg.auths[reg.host]!.auth, Buffer.from(`alice:${PASSWORD}`).toString('base64'));
});

test('mpk login on a terminal: Ctrl-C at the password prompt cancels (exit 130) and saves nothing', async (t) => {
  if (!needsScript(t)) return;
  const reg = await registry(t);
  const c = onTerminal(t, reg.env, ['login', reg.host, '-u', 'alice']);
  await c.waitFor(/Password for alice@[^:]+:\d+: $/);
  c.type('half-typed');
  c.type('\x03');
  assert.equal(await c.exit, 130, c.screen());
  assert.match(c.screen(), /mpk: login cancelled/);
  assert.ok(!c.screen().includes('half-typed'));
  assert.deepEqual(await readdir(reg.cfg).catch(() => []), []);
});

/** The CLI in-process, with no terminal: stdin is a pipe (or --password-stdin's text). */
const mpkNoTty = (env: NodeJS.ProcessEnv, stdin: string | undefined, ...argv: string[]) => mpkWith({ env, ...(stdin === undefined ? {} : { stdin }) }, ...argv);

test('mpk login off a terminal without --password-stdin: a usage error that says to use --password-stdin', async (t) => {
  const dir = await tempDir(t);
  const r = await mpkNoTty({ DOCKER_CONFIG: dir }, undefined, 'login', 'localhost:5000', '-u', 'alice');
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^mpk: login: no password, and no terminal to ask for one on\. Hint: use --password-stdin/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.deepEqual(await readdir(dir), []);
});

test('mpk login/logout --json: one JSON object each on stdout', async (t) => {
  const reg = await registry(t);
  const li = await mpkNoTty(reg.env, `${PASSWORD}\n`, 'login', reg.host, '-u', 'alice', '--password-stdin', '--json');
  assert.equal(li.code, 0, li.stderr);
  assert.deepEqual(JSON.parse(li.stdout), { host: reg.host, username: 'alice', savedIn: 'config.json' });
  const bad = await mpkNoTty(reg.env, 'wrong\n', 'login', reg.host, '-u', 'alice', '--password-stdin', '--json');
  assert.equal(bad.code, 8);
  assert.equal(bad.stdout, '');
  assert.equal(JSON.parse(bad.stderr).error.code, 'UNAUTHORIZED');
  const lo = await mpkNoTty(reg.env, undefined, 'logout', reg.host, '--json');
  assert.deepEqual(JSON.parse(lo.stdout), { host: reg.host, removed: true });
  assert.deepEqual(JSON.parse((await mpkNoTty(reg.env, undefined, 'logout', reg.host, '--json')).stdout), { host: reg.host, removed: false });
});
