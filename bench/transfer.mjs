#!/usr/bin/env node
// bench/transfer: mpk push/pull against skopeo, both to and from Debian's docker-registry, in the
// same run on the same model. Not a test: it prints figures and ratios.
//
//   node bench/transfer.mjs [--size-mib 2048] [--files 10000] [--runs 3] [--dir /tmp] [--skopeo-small]
//
// 1. A model of SIZE MiB (2 weight shards of random bytes + small files), built into an mpk store,
//    which is an OCI layout that skopeo reads:
//    push:  skopeo copy --preserve-digests oci:STORE:bench:v1 docker://…   vs  mpk push
//    pull:  skopeo copy --dest-oci-accept-uncompressed-layers docker://… oci:OUT   vs  mpk pull (fresh store)
//    Every run gets a fresh registry (data wiped), so nothing is skipped. Medians of RUNS; peak RSS
//    (VmHWM) of the client. Then a no-op re-push by mpk (everything present), and the fetch floor:
//    curl -o of every blob at once, nothing verified (what the sockets and the page cache cost).
// 2. A model of FILES small files: mpk push and pull, per-blob cost against the registry's round
//    trip (median HEAD /v2/ latency measured here); --skopeo-small times skopeo on it too (slow).
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync, openSync, writeSync, closeSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { MPK, PEERS, fmt, flag, median, mib, opt, root, scratch } from './common.mjs';

const SIZE_MIB = Number(opt('size-mib', 2048));
const FILES = Number(opt('files', 10000));
const RUNS = Number(opt('runs', 3));
const SKOPEO_SMALL = flag('skopeo-small');
const base = scratch('mpk-bench-transfer-');
let registryPid;


/** Runs a command; resolves with wall ms and the peak RSS (VmHWM) polled from /proc. */
function measured(cmd, argv, env = process.env) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const p = spawn(cmd, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let hwm = 0;
    let stderr = '';
    p.stderr.on('data', (d) => (stderr += d));
    p.stdout.on('data', () => undefined);
    const poll = setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${p.pid}/status`, 'utf8'));
        if (m) hwm = Math.max(hwm, Number(m[1]));
      } catch {
        /* exited */
      }
    }, 20);
    p.on('error', reject);
    p.on('close', (code) => {
      clearInterval(poll);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (code !== 0) reject(new Error(`${cmd} ${argv.join(' ')} failed (${code}): ${stderr.slice(-2000)}`));
      else resolve({ ms, rssKb: hwm });
    });
  });
}

function startRegistry(data) {
  rmSync(data, { recursive: true, force: true });
  const port = 20000 + Math.floor(Math.random() * 20000);
  const r = spawnSync('bash', [join(PEERS, 'registry-up.sh'), String(port), data], { encoding: 'utf8', env: { ...process.env, REGISTRY_LOG_LEVEL: 'error' } });
  if (r.status !== 0) throw new Error(`registry-up failed: ${r.stderr}`);
  registryPid = r.stdout.trim();
  return `127.0.0.1:${port}`;
}
function stopRegistry() {
  if (registryPid) spawnSync('bash', [join(PEERS, 'registry-down.sh'), registryPid], { stdio: 'ignore' });
  registryPid = undefined;
}

const mpk = (home, ...a) => measured(process.execPath, [MPK, ...a], { ...process.env, MPK_HOME: home });
const skopeo = (...a) => measured('skopeo', a);

function makeBig(dir) {
  mkdirSync(dir, { recursive: true });
  const shards = 2;
  const block = randomBytes(1 << 20);
  for (let s = 0; s < shards; s++) {
    const fd = openSync(join(dir, `model-${s + 1}-of-${shards}.safetensors`), 'w');
    for (let i = 0; i < Math.ceil(SIZE_MIB / shards); i++) {
      block.writeUInt32LE(s * 100000 + i, 0);
      writeSync(fd, block);
    }
    closeSync(fd);
  }
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'llama', torch_dtype: 'bfloat16' }));
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify({ vocab: Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`t${i}`, i])) }));
  writeFileSync(join(dir, 'README.md'), '# bench model\n');
}

function makeSmall(dir) {
  mkdirSync(join(dir, 'data'), { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'llama' }));
  writeFileSync(join(dir, 'model.safetensors'), randomBytes(1 << 20));
  for (let i = 0; i < FILES - 2; i++) {
    const sub = join(dir, 'data', `d${Math.floor(i / 1000)}`);
    if (i % 1000 === 0) mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, `s${i}.json`), `{"i":${i},"pad":"${'x'.repeat(200 + (i % 300))}"}\n`);
  }
}

async function roundTripMs(host) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const times = [];
  for (let i = 0; i < 50; i++) {
    const t0 = process.hrtime.bigint();
    await new Promise((res, rej) => http.get(`http://${host}/v2/`, { agent }, (r) => r.resume().on('end', res)).on('error', rej));
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  agent.destroy();
  return median(times);
}

/**
 * What fetching and writing the same bytes costs with no verification at all: curl fetching every
 * blob at once into files. The floor any verifying pull stands on here (the sockets, the page
 * cache); checks each file's size, so the work is real.
 */
async function fetchFloor(host, dir) {
  mkdirSync(dir, { recursive: true });
  const get = (path, accept) =>
    new Promise((res, rej) => http.get(`http://${host}${path}`, { headers: { accept } }, (r) => { const c = []; r.on('data', (d) => c.push(d)).on('end', () => res(Buffer.concat(c))); }).on('error', rej));
  const manifest = JSON.parse((await get('/v2/mpk/model/manifests/v1', 'application/vnd.oci.image.manifest.v1+json')).toString());
  const blobs = [manifest.config, ...manifest.layers];
  const script = blobs.map((b, i) => `curl -sf http://${host}/v2/mpk/model/blobs/${b.digest} -o ${dir}/${i} &`).join('\n') + '\nwait';
  const m = await measured('bash', ['-c', script]);
  blobs.forEach((b, i) => {
    if (statSync(join(dir, String(i))).size !== b.size) throw new Error(`fetch floor: blob ${b.digest} came out short`);
  });
  rmSync(dir, { recursive: true, force: true });
  return m.ms;
}

try {
  spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
  const data = join(base, 'registry');
  if (SIZE_MIB > 0) {
    const dir = join(base, 'big');
    makeBig(dir);
    const store = join(base, 'store');
    await mpk(store, 'build', '-q', '-t', 'bench:v1', dir);
    const res = { skPush: [], mpkPush: [], skPull: [], mpkPull: [], skPushRss: [], mpkPushRss: [], skPullRss: [], mpkPullRss: [], noop: [], floor: [] };
    for (let r = 0; r < RUNS; r++) {
      let host = startRegistry(data);
      let s = await skopeo('copy', '--dest-tls-verify=false', '--preserve-digests', `oci:${store}:bench:v1`, `docker://${host}/sk/model:v1`);
      res.skPush.push(s.ms);
      res.skPushRss.push(s.rssKb);
      const out = join(base, `sk-out-${r}`);
      s = await skopeo('copy', '--src-tls-verify=false', '--preserve-digests', '--dest-oci-accept-uncompressed-layers', `docker://${host}/sk/model:v1`, `oci:${out}:m`);
      res.skPull.push(s.ms);
      res.skPullRss.push(s.rssKb);
      rmSync(out, { recursive: true, force: true });
      stopRegistry();
      host = startRegistry(data);
      let m = await mpk(store, 'push', '-q', 'bench:v1', `${host}/mpk/model:v1`);
      res.mpkPush.push(m.ms);
      res.mpkPushRss.push(m.rssKb);
      res.noop.push((await mpk(store, 'push', '-q', 'bench:v1', `${host}/mpk/model:v1`)).ms);
      const fresh = join(base, `pull-store-${r}`);
      m = await mpk(fresh, 'pull', '-q', `${host}/mpk/model:v1`);
      res.mpkPull.push(m.ms);
      res.mpkPullRss.push(m.rssKb);
      rmSync(fresh, { recursive: true, force: true });
      res.floor.push(await fetchFloor(host, join(base, `floor-${r}`)));
      stopRegistry();
      process.stderr.write(`run ${r + 1}/${RUNS} done\n`);
    }
    const push = median(res.skPush) / median(res.mpkPush);
    const pull = median(res.skPull) / median(res.mpkPull);
    console.log(`\n== ${SIZE_MIB} MiB model (2 shards + 3 small files), docker-registry 2.8 on 127.0.0.1, medians of ${RUNS}`);
    console.log(`push: skopeo ${fmt(median(res.skPush))} (RSS ${mib(median(res.skPushRss))})  mpk ${fmt(median(res.mpkPush))} (RSS ${mib(median(res.mpkPushRss))})  -> mpk ${push.toFixed(2)}x skopeo's speed (target >= 1.0x)`);
    console.log(`pull: skopeo ${fmt(median(res.skPull))} (RSS ${mib(median(res.skPullRss))})  mpk ${fmt(median(res.mpkPull))} (RSS ${mib(median(res.mpkPullRss))})  -> mpk ${pull.toFixed(2)}x skopeo's speed (target >= 4x)`);
    console.log(`fetch floor: curl -o of every blob at once, nothing verified, ${fmt(median(res.floor))} -> ${(median(res.skPull) / median(res.floor)).toFixed(2)}x skopeo's speed; mpk's verified pull takes ${(median(res.mpkPull) / median(res.floor)).toFixed(2)}x its time`);
    console.log(`mpk throughput: push ${((SIZE_MIB * 1000) / median(res.mpkPush)).toFixed(0)} MiB/s, pull ${((SIZE_MIB * 1000) / median(res.mpkPull)).toFixed(0)} MiB/s; peak RSS max ${mib(Math.max(...res.mpkPushRss, ...res.mpkPullRss))} (target < 150 MB)`);
    console.log(`no-op re-push (all present): ${fmt(median(res.noop))} (target < 0.5 s, includes node start-up)`);
    rmSync(dir, { recursive: true, force: true });
  }
  if (FILES > 0) {
    const dir = join(base, 'small');
    makeSmall(dir);
    const store = join(base, 'store-small');
    await mpk(store, 'build', '-q', '-t', 'smallbench:v1', dir);
    const host = startRegistry(data);
    const rtt = await roundTripMs(host);
    const push = await mpk(store, 'push', '-q', 'smallbench:v1', `${host}/mpk/small:v1`);
    const noop = await mpk(store, 'push', '-q', 'smallbench:v1', `${host}/mpk/small:v1`);
    const fresh = join(base, 'pull-small');
    const pull = await mpk(fresh, 'pull', '-q', `${host}/mpk/small:v1`);
    console.log(`\n== ${FILES} files (one blob each), median round trip GET /v2/ ${rtt.toFixed(2)} ms (one connection)`);
    console.log(`mpk push ${fmt(push.ms)} = ${(push.ms / FILES).toFixed(2)} ms/blob (${(push.ms / FILES / rtt).toFixed(1)} round trips; each new blob is HEAD + POST + PUT), RSS ${mib(push.rssKb)}`);
    console.log(`mpk no-op re-push ${fmt(noop.ms)}`);
    console.log(`mpk pull ${fmt(pull.ms)} = ${(pull.ms / FILES).toFixed(2)} ms/blob (${(pull.ms / FILES / rtt).toFixed(1)} round trips; GET + a file created per blob), RSS ${mib(pull.rssKb)}`);
    if (SKOPEO_SMALL) {
      const sk = await skopeo('copy', '--dest-tls-verify=false', '--preserve-digests', `oci:${store}:smallbench:v1`, `docker://${host}/sk/small:v1`);
      console.log(`skopeo push ${fmt(sk.ms)} -> mpk ${(sk.ms / push.ms).toFixed(2)}x skopeo's speed`);
    }
    stopRegistry();
  }
} finally {
  stopRegistry();
  rmSync(base, { recursive: true, force: true });
}
