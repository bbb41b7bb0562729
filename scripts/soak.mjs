#!/usr/bin/env node
// npm run soak: the attacks of issue #14 as one command, on loopback only, bounded in time.
// Each fault prints one line of figures; the exit code is non-zero if anything was lost or corrupt.
//
//   node scripts/soak.mjs [--rounds 10] [--size-mib 192] [--pushers 16] [--dir /tmp] [--keep]
//
// Kills are aimed inside the time one clean push or pull takes (measured first), and each round
// uses a fresh registry root or store, so every kill lands in a real transfer.
// 1. kill -9 of `mpk serve` mid-upload, ×rounds: restart it on the same root; the push is run
//    again and must complete; a pull into a fresh store verifies, and `mpk serve verify` is clean.
// 2. kill -9 of `mpk pull` mid-blob, ×rounds: the next pull resumes and completes; `mpk verify` clean.
// 3. N concurrent pushers (different models, shared blobs) to one server: all land, all pull back.
// 4. A full disk (a 64 MiB tmpfs as the server root; root only, else skipped with the reason): a
//    push larger than the disk fails fast with a clear error, and the server then takes a small push.
// 5. Slow clients: 64 connections trickling request headers while pushes and pulls run; those run
//    at normal speed and the server stays up.
// 6. Flipped bytes in the local store: `mpk verify` names the blob (exit 4); `mpk pull` repairs it.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, readSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values: o } = parseArgs({
  options: {
    rounds: { type: 'string', default: '10' },
    'size-mib': { type: 'string', default: '192' },
    pushers: { type: 'string', default: '16' },
    dir: { type: 'string', default: tmpdir() },
    keep: { type: 'boolean', default: false },
  },
});
const ROUNDS = Number(o.rounds);
const SIZE = Number(o['size-mib']);
const PUSHERS = Number(o.pushers);
const root = new URL('..', import.meta.url).pathname;
const MPK = join(root, 'bin', 'mpk.js');
const work = join(o.dir, `mpk-soak-${process.pid}`);
mkdirSync(work, { recursive: true });
const started = Date.now();
let failed = false;
const children = new Set();

function line(ok, text) {
  if (!ok) failed = true;
  process.stdout.write(`${ok ? 'ok  ' : 'FAIL'} ${text}\n`);
}

/** mpk as a process; resolves {code, out}. */
function mpk(args, env = {}) {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [MPK, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(p);
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.on('close', (code, signal) => {
      children.delete(p);
      resolve({ code, signal, out });
    });
  });
}
function mpkChild(args, env = {}) {
  const p = spawn(process.execPath, [MPK, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(p);
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => (out += d));
  const done = new Promise((r) => p.on('close', (code, signal) => (children.delete(p), r({ code, signal, out }))));
  return { p, done, out: () => out };
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** `mpk serve` on ROOT and PORT (0: any); resolves {host, stop, kill9}. */
async function serve(serveRoot, port = 0) {
  const s = mpkChild(['serve', '-q', '--root', serveRoot, '--addr', `127.0.0.1:${port}`]);
  for (let i = 0; i < 400 && !/listening on/.test(s.out()); i++) {
    if (s.p.exitCode !== null) break;
    await sleep(25);
  }
  const url = /listening on (http:\/\/[0-9.:]+)/.exec(s.out())?.[1];
  if (!url) throw new Error(`mpk serve did not start: ${s.out()}`);
  return {
    host: url.replace('http://', ''),
    port: Number(url.split(':').pop()),
    kill9: async () => (s.p.kill('SIGKILL'), s.done),
    stop: async () => (s.p.kill('SIGTERM'), s.done),
  };
}

/** A model directory: one large random weight file and a few small files. */
function makeModel(dir, mib, seed) {
  mkdirSync(dir, { recursive: true });
  const fd = openSync(join(dir, 'model.safetensors'), 'w');
  const block = randomBytes(1024 * 1024);
  for (let i = 0; i < mib; i++) {
    block.writeUInt32LE(i, 0);
    block.write(seed, 8);
    writeSync(fd, block);
  }
  closeSync(fd);
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'llama', seed }));
  writeFileSync(join(dir, 'README.md'), `# ${seed}\n`);
}

async function must(args, env, what) {
  const r = await mpk(args, env);
  if (r.code !== 0) throw new Error(`${what}: mpk ${args.join(' ')} exited ${r.code}: ${r.out.slice(-600)}`);
  return r;
}

/** ms one run of `args` takes: kills are aimed inside that window. */
async function duration(args, env) {
  const t0 = Date.now();
  await must(args, env, 'timing run');
  return Date.now() - t0;
}
const inside = (ms) => Math.floor(ms * (0.1 + 0.8 * Math.random()));

async function killServerMidUpload(env) {
  // each round a fresh registry root, so the push really uploads; the kill lands inside it
  const probe = await serve(join(work, 'srv1-probe'));
  const window = await duration(['push', '-q', 'soak/big:v1', `${probe.host}/soak/big:v1`], env);
  await probe.stop();
  let cut = 0;
  let completed = 0;
  let clean = 0;
  let verified = 0;
  for (let i = 0; i < ROUNDS; i++) {
    const serveRoot = join(work, `srv1-${i}`);
    let server = await serve(serveRoot);
    const ref = `${server.host}/soak/big:v1`;
    const push = mpkChild(['push', '-q', 'soak/big:v1', ref], env);
    await sleep(inside(window));
    await server.kill9();
    if ((await push.done).code !== 0) cut++;
    server = await serve(serveRoot, server.port);
    if ((await mpk(['push', '-q', 'soak/big:v1', ref], env)).code === 0) completed++;
    const fresh = { ...env, MPK_HOME: join(work, `pull1-${i}`) };
    if ((await mpk(['pull', '-q', ref], fresh)).code === 0 && (await mpk(['verify'], fresh)).code === 0) verified++;
    await server.stop();
    if ((await mpk(['serve', 'verify', '--root', serveRoot])).code === 0) clean++;
    rmSync(serveRoot, { recursive: true, force: true });
    rmSync(join(work, `pull1-${i}`), { recursive: true, force: true });
  }
  line(completed === ROUNDS && verified === ROUNDS && clean === ROUNDS, `kill -9 of the server mid-upload x${ROUNDS} (push takes ${window} ms): ${cut} pushes cut, ${completed} completed after a restart, ${verified} pulled back verified, ${clean} roots clean by serve verify`);
}

async function killClientMidPull(env) {
  const server = await serve(join(work, 'srv2'));
  const ref = `${server.host}/soak/big:v1`;
  await must(['push', '-q', 'soak/big:v1', ref], env, 'seed push');
  const window = await duration(['pull', '-q', ref], { ...env, MPK_HOME: join(work, 'pull2-probe') });
  let cut = 0;
  let resumed = 0;
  for (let i = 0; i < ROUNDS; i++) {
    // each round a fresh store: the kill lands in a real download, the next pull resumes it
    const store = { ...env, MPK_HOME: join(work, `pull2-${i}`) };
    const pull = mpkChild(['pull', '-q', ref], store);
    await sleep(inside(window));
    pull.p.kill('SIGKILL');
    if ((await pull.done).signal === 'SIGKILL') cut++;
    if ((await mpk(['pull', '-q', ref], store)).code === 0 && (await mpk(['verify'], store)).code === 0) resumed++;
    rmSync(join(work, `pull2-${i}`), { recursive: true, force: true });
  }
  await server.stop();
  line(resumed === ROUNDS, `kill -9 of the client mid-pull x${ROUNDS} (pull takes ${window} ms): ${cut} pulls cut, ${resumed} completed by the next pull and verified`);
}

async function concurrentPushers(env) {
  const serveRoot = join(work, 'srv3');
  const server = await serve(serveRoot);
  const models = [];
  for (let i = 0; i < PUSHERS; i++) {
    const dir = join(work, `m${i}`);
    makeModel(dir, 4, `pusher-${i % 4}`); // four distinct weights: blobs shared between pushers
    writeFileSync(join(dir, 'README.md'), `# pusher ${i}\n`);
    await must(['build', '-q', '-t', `soak/p${i}:v1`, dir], env, 'build');
    models.push(`soak/p${i}:v1`);
  }
  const t0 = Date.now();
  const results = await Promise.all(models.map((m) => mpk(['push', '-q', m, `${server.host}/${m}`], env)));
  const ok = results.filter((r) => r.code === 0).length;
  const fresh = { ...env, MPK_HOME: join(work, 'pull3') };
  let back = 0;
  for (const m of models) if ((await mpk(['pull', '-q', `${server.host}/${m}`], fresh)).code === 0) back++;
  const verified = (await mpk(['verify'], fresh)).code === 0;
  await server.stop();
  const srvOk = (await mpk(['serve', 'verify', '--root', serveRoot])).code === 0;
  line(ok === PUSHERS && back === PUSHERS && verified && srvOk, `${PUSHERS} concurrent pushers: ${ok} pushed in ${((Date.now() - t0) / 1000).toFixed(1)} s, ${back} pulled back${verified ? ' verified' : ' NOT verified'}, serve verify ${srvOk ? 'clean' : 'FOUND PROBLEMS'}`);
}

async function fullDisk(env) {
  if (process.getuid?.() !== 0) return line(true, 'full disk: skipped (needs root to mount a tmpfs)');
  const mnt = join(work, 'small');
  mkdirSync(mnt, { recursive: true });
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', mnt]);
  if (m.status !== 0) return line(true, `full disk: skipped (mount failed: ${String(m.stderr).trim()})`);
  try {
    const server = await serve(join(mnt, 'root'));
    const big = join(work, 'bigdisk');
    makeModel(big, 96, 'disk');
    await must(['build', '-q', '-t', 'soak/disk:v1', big], env, 'build');
    const t0 = Date.now();
    const r = await mpk(['push', '-q', '--stall-timeout', '30', 'soak/disk:v1', `${server.host}/soak/disk:v1`], env);
    const secs = (Date.now() - t0) / 1000;
    const clear = /space/i.test(r.out);
    const small = join(work, 'smalldisk');
    makeModel(small, 1, 'small');
    await must(['build', '-q', '-t', 'soak/small:v1', small], env, 'build');
    await must(['serve', 'gc', '--root', join(mnt, 'root')], {}, 'gc').catch(() => undefined);
    const after = await mpk(['push', '-q', 'soak/small:v1', `${server.host}/soak/small:v1`], env);
    await server.stop();
    line(r.code !== 0 && secs < 30 && clear && after.code === 0, `full disk (64 MiB tmpfs, 96 MiB push): failed in ${secs.toFixed(1)} s with ${clear ? 'an out-of-space message' : `"${r.out.trim().split('\n').pop()}"`}, exit ${r.code}; a small push afterwards ${after.code === 0 ? 'worked' : `failed (${after.code})`}`);
  } finally {
    spawnSync('umount', [mnt]);
  }
}

async function slowClients(env) {
  const server = await serve(join(work, 'srv5'));
  const sockets = [];
  for (let i = 0; i < 64; i++) {
    const s = net.connect(server.port, '127.0.0.1');
    s.on('error', () => undefined);
    s.write('GET /v2/ HTTP/1.1\r\nHost: x\r\n');
    sockets.push(s);
  }
  const trickle = setInterval(() => sockets.forEach((s) => s.writable && s.write('X-Slow: 1\r\n')), 1000);
  const t0 = Date.now();
  const push = await mpk(['push', '-q', 'soak/big:v1', `${server.host}/soak/big:v1`], env);
  const pull = push.code === 0 ? await mpk(['pull', '-q', `${server.host}/soak/big:v1`], { ...env, MPK_HOME: join(work, 'pull5') }) : push;
  const secs = (Date.now() - t0) / 1000;
  clearInterval(trickle);
  sockets.forEach((s) => s.destroy());
  const alive = (await mpk(['tags', `${server.host}/soak/big`])).code === 0;
  await server.stop();
  line(push.code === 0 && pull.code === 0 && alive, `64 slow clients trickling headers: a ${SIZE} MiB push and pull beside them took ${secs.toFixed(1)} s, server ${alive ? 'up' : 'DOWN'}`);
}

async function flippedBytes(env) {
  const server = await serve(join(work, 'srv6'));
  const ref = `${server.host}/soak/big:v1`;
  await must(['push', '-q', 'soak/big:v1', ref], env, 'seed push');
  const store = { ...env, MPK_HOME: join(work, 'pull6') };
  await must(['pull', '-q', ref], store, 'pull');
  const blobs = join(work, 'pull6', 'blobs', 'sha256');
  const biggest = readdirSync(blobs).map((f) => ({ f, size: statSync(join(blobs, f)).size })).sort((a, b) => b.size - a.size)[0];
  const p = join(blobs, biggest.f);
  spawnSync('chmod', ['u+w', p]);
  const fd = openSync(p, 'r+');
  const b = Buffer.alloc(1);
  const at = Math.floor(biggest.size / 2);
  readSync(fd, b, 0, 1, at);
  b[0] ^= 0xff;
  writeSync(fd, b, 0, 1, at);
  closeSync(fd);
  const v = await mpk(['verify'], store);
  const named = v.code === 4 && v.out.includes(biggest.f.slice(0, 12));
  const repair = await mpk(['pull', '-q', ref], store);
  const clean = (await mpk(['verify'], store)).code === 0;
  await server.stop();
  line(named && repair.code === 0 && clean, `a flipped byte in a stored blob: verify ${named ? 'named it (exit 4)' : `said exit ${v.code}`}, pull ${repair.code === 0 ? 'ran' : `failed (${repair.code})`}, store ${clean ? 'repaired' : 'STILL CORRUPT'}`);
}

const env = { MPK_HOME: join(work, 'store'), DOCKER_CONFIG: join(work, 'docker') };
try {
  process.stdout.write(`mpk soak: ${ROUNDS} rounds, a ${SIZE} MiB model, ${PUSHERS} pushers, in ${work}\n`);
  makeModel(join(work, 'big'), SIZE, 'soak');
  await must(['build', '-q', '-t', 'soak/big:v1', join(work, 'big')], env, 'build');
  for (const fault of [killServerMidUpload, killClientMidPull, concurrentPushers, fullDisk, slowClients, flippedBytes]) {
    try {
      await fault(env);
    } catch (e) {
      line(false, `${fault.name}: ${e.message}`);
    }
  }
} finally {
  for (const c of children) c.kill('SIGKILL');
  if (!o.keep) rmSync(work, { recursive: true, force: true });
  process.stdout.write(`${failed ? 'soak FAILED' : 'soak OK'} in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
  process.exitCode = failed ? 1 : 0;
}
