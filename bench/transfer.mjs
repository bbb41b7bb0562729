#!/usr/bin/env node
// bench/transfer: mpk push/pull against skopeo and against curl floors, on Debian's docker-registry
// 2.8 and on `mpk serve`, in the same run on the same models. Not a test: it prints figures and ratios.
//
//   node bench/transfer.mjs [--sizes 512,2048] [--files 10000] [--runs 3] [--registries docker,mpk]
//                           [--dir /tmp] [--skopeo-small] [--quick]
//
// --quick: --sizes 512 --files 2000 --runs 1 (a few minutes). --sizes 0 / --files 0 skip a part.
//
// Per registry and model size (2 weight shards of random bytes + small files, built into an mpk
// store, an OCI layout that skopeo reads), each run on fresh registries:
//   push:  skopeo copy --preserve-digests oci:STORE:bench:v1 docker://…  vs  mpk push
//   pull:  skopeo copy … docker://… oci:OUT  vs  mpk pull (fresh store)
//   fetch floor:  curl fetching every blob at once into files, nothing verified
//   upload floor: curl uploading every blob at once, one request carrying each blob's bytes (a PUT
//                 into a session opened just before, timed too; on mpk serve, which takes it, the
//                 single `POST ?digest=`), nothing hashed on the client
// Each download (skopeo, mpk, the fetch floor) starts from the same page-cache state: `warmPages`
// writes and deletes the model's size first (see there: on this VM whichever step followed a
// deletion was up to 0.7 s faster).
// Medians of RUNS; peak RSS (VmHWM) of the client. Speed ratios: > 1 means mpk is faster.
// Small files (FILES blobs): the same, one blob per file; curl does them 8 at a time in one process.
// Their folders are set aside, not deleted, until the end (`setAside`): on an ext4 without a journal
// (this machine's), each new inode is checked against the inodes deleted in the last minutes of its
// group (recently_deleted in fs/ext4/ialloc.c), so that whichever step followed the deletion of
// 2,000 files spent up to 0.5 s more in the kernel creating its own.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, renameSync, writeFileSync, openSync, writeSync, closeSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { MPK, PEERS, fmt, flag, median, mib, opt, root, scratch } from './common.mjs';

const QUICK = flag('quick');
const SIZES = String(opt('sizes', QUICK ? '512' : '512,2048')).split(',').map(Number).filter((n) => n > 0);
const FILES = Number(opt('files', QUICK ? 2000 : 10000));
const RUNS = Number(opt('runs', QUICK ? 1 : 3));
const REGISTRIES = String(opt('registries', 'docker,mpk')).split(',');
const SKOPEO_SMALL = flag('skopeo-small');
const base = scratch('mpk-bench-transfer-');
const running = new Set();

/**
 * Runs a command; resolves with wall ms and the peak RSS (VmHWM) polled from /proc. Dirty pages
 * of the steps before (a push wrote the registry's copy) are flushed first (`sync`), so that their
 * writeback does not land in whichever step comes next.
 */
function measured(cmd, argv, env = process.env) {
  spawnSync('sync');
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

/**
 * A fresh, empty registry of the given kind on a random port: { host, kind, stop() }. The last
 * one's data is deleted, or set aside (`aside`, when it holds many small blobs).
 */
async function startRegistry(kind, aside = false) {
  const data = join(base, `registry-${kind}`);
  if (aside && existsSync(data)) setAside(data);
  else rmSync(data, { recursive: true, force: true });
  if (kind === 'docker') {
    const port = 20000 + Math.floor(Math.random() * 20000);
    const r = spawnSync('bash', [join(PEERS, 'registry-up.sh'), String(port), data], { encoding: 'utf8', env: { ...process.env, REGISTRY_LOG_LEVEL: 'error' } });
    if (r.status !== 0) throw new Error(`registry-up failed: ${r.stderr}`);
    const pid = r.stdout.trim();
    const reg = { kind, host: `127.0.0.1:${port}`, stop: () => (running.delete(reg), spawnSync('bash', [join(PEERS, 'registry-down.sh'), pid], { stdio: 'ignore' })) };
    running.add(reg);
    return reg;
  }
  const p = spawn(process.execPath, [MPK, 'serve', '--root', data, '--addr', '127.0.0.1:0', '-q'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => (out += d));
  const deadline = Date.now() + 20_000;
  let url;
  while (!(url = /listening on http:\/\/([0-9.:]+)/.exec(out)?.[1])) {
    if (p.exitCode !== null || Date.now() > deadline) throw new Error(`mpk serve did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  const reg = {
    kind,
    host: url,
    stop: async () => {
      running.delete(reg);
      if (p.exitCode === null) {
        p.kill('SIGTERM');
        await new Promise((r) => p.once('exit', r));
      }
    },
  };
  running.add(reg);
  return reg;
}

/**
 * Writes then deletes `bytes` of page cache, so that the next download reuses pages the guest has
 * just freed. On this VM the first touch of never-used guest memory is expensive: a 512 MiB pull
 * drawing on it spent 0.7 s more in the kernel's page-cache copy (copy_folio_from_iter_atomic, 36%
 * of its samples, against 3% when it ran right after another download was deleted; `perf record`).
 * Without this, whichever step follows a deletion wins: the curl floor always did (it ran right
 * after the mpk pull's store was deleted), mpk's pull never (it followed the push).
 * In 1 MiB writes: the page cache is made of folios as large as the writes, and freed folios are
 * taken again by writes of their size first. Warmed with 8 MiB writes, a 512 MiB mpk pull (1 MiB
 * writes) spent 0.30-1.33 s in the kernel and curl 0.37-1.57 s; warmed with 1 MiB writes,
 * 0.21-0.30 s and 0.35-0.43 s (5 and 4 runs, interleaved, outputs kept: /usr/bin/time).
 */
function warmPages(bytes) {
  const file = join(base, 'warm');
  const fd = openSync(file, 'w');
  const block = Buffer.alloc(1 << 20);
  for (let n = 0; n < bytes; n += block.length) writeSync(fd, block);
  closeSync(fd);
  rmSync(file);
}

/** Moves a folder of many files out of the way; the whole scratch folder is deleted at the end. */
let asides = 0;
function setAside(path) {
  mkdirSync(join(base, 'aside'), { recursive: true });
  renameSync(path, join(base, 'aside', String(asides++)));
}

const mpk = (home, ...a) => measured(process.execPath, [MPK, ...a], { ...process.env, MPK_HOME: home });
const skopeo = (...a) => measured('skopeo', a);

function makeBig(dir, sizeMib) {
  mkdirSync(dir, { recursive: true });
  const shards = 2;
  const block = randomBytes(1 << 20);
  for (let s = 0; s < shards; s++) {
    const fd = openSync(join(dir, `model-${s + 1}-of-${shards}.safetensors`), 'w');
    for (let i = 0; i < Math.ceil(sizeMib / shards); i++) {
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

/** The blobs (config + layers) of the model tagged in a store, with their files. */
function storeBlobs(store) {
  const index = JSON.parse(readFileSync(join(store, 'index.json'), 'utf8'));
  const file = (d) => join(store, 'blobs', 'sha256', d.slice(7));
  const manifest = JSON.parse(readFileSync(file(index.manifests[0].digest), 'utf8'));
  return [manifest.config, ...manifest.layers].map((b) => ({ ...b, file: file(b.digest) }));
}

/** One curl process running every transfer of `sections` (curl config lines each), `max` at once. */
function curlAll(sections, max, name) {
  const cfg = join(base, `${name}.curl`);
  writeFileSync(cfg, sections.map((s) => s.join('\n')).join('\nnext\n') + '\n');
  return measured('curl', ['--parallel', '--parallel-max', String(max), '--parallel-immediate', '-sSf', '-K', cfg]);
}

/** Unverified: every blob fetched into a file (all at once for a few big blobs, 8 at a time for many). */
async function fetchFloor(reg, repo, blobs) {
  const dir = join(base, 'floor');
  mkdirSync(dir, { recursive: true });
  const m = await curlAll(blobs.map((b, i) => [`url = "http://${reg.host}/v2/${repo}/blobs/${b.digest}"`, `output = "${dir}/${i}"`]), Math.min(blobs.length, blobs.length > 16 ? 8 : 16), 'fetch');
  blobs.forEach((b, i) => {
    if (statSync(join(dir, String(i))).size !== b.size) throw new Error(`fetch floor: blob ${b.digest} came out short`);
  });
  if (blobs.length > 16) setAside(dir);
  else rmSync(dir, { recursive: true, force: true });
  return m.ms;
}

/** POST a session (docker-registry needs one before the bytes), keep-alive, 16 at once; the Locations. */
async function openSessions(reg, repo, n) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const post = () =>
    new Promise((res, rej) =>
      http
        .request(`http://${reg.host}/v2/${repo}/blobs/uploads/`, { method: 'POST', agent, headers: { 'content-length': 0 } }, (r) => {
          r.resume().on('end', () => (r.statusCode === 202 ? res(new URL(r.headers.location, `http://${reg.host}/`).href) : rej(new Error(`POST: ${r.statusCode}`))));
        })
        .on('error', rej)
        .end(),
    );
  const out = [];
  for (let i = 0; i < n; i += 16) out.push(...(await Promise.all(Array.from({ length: Math.min(16, n - i) }, post))));
  agent.destroy();
  return out;
}

/** Unverified: every blob uploaded in one request carrying its bytes; the registry checks the digests. */
async function uploadFloor(reg, repo, blobs) {
  const max = blobs.length > 16 ? 8 : 16;
  spawnSync('sync');
  const t0 = process.hrtime.bigint();
  let sections;
  if (reg.kind === 'mpk') {
    sections = blobs.map((b) => [`url = "http://${reg.host}/v2/${repo}/blobs/uploads/?digest=${b.digest}"`, `data-binary = "@${b.file}"`, 'header = "Content-Type: application/octet-stream"']);
  } else {
    const locations = await openSessions(reg, repo, blobs.length);
    sections = blobs.map((b, i) => {
      const u = new URL(locations[i]);
      u.searchParams.set('digest', b.digest);
      return [`url = "${u.href}"`, `upload-file = "${b.file}"`, 'header = "Content-Type: application/octet-stream"'];
    });
  }
  await curlAll(sections, max, 'upload');
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** Every run's times (not the RSS), to stderr: the medians printed after them hide the spread. */
function printRuns(res) {
  const times = Object.entries(res).filter(([k, v]) => v.length && !k.endsWith('Rss'));
  process.stderr.write(`every run (ms): ${JSON.stringify(Object.fromEntries(times.map(([k, v]) => [k, v.map(Math.round)])))}\n`);
}

const speed = (baseline, ms) => (baseline / ms).toFixed(2);
const rate = (mibs, ms) => `${((mibs * 1000) / ms).toFixed(0)} MiB/s`;

async function bigModel(sizeMib) {
  const dir = join(base, 'big');
  makeBig(dir, sizeMib);
  const store = join(base, 'store');
  await mpk(store, 'build', '-q', '-t', 'bench:v1', dir);
  rmSync(dir, { recursive: true, force: true });
  const blobs = storeBlobs(store);
  for (const kind of REGISTRIES) {
    const res = { skPush: [], mpkPush: [], skPull: [], mpkPull: [], mpkPushRss: [], mpkPullRss: [], noop: [], fetch: [], upload: [] };
    for (let r = 0; r < RUNS; r++) {
      let reg = await startRegistry(kind);
      res.skPush.push((await skopeo('copy', '--dest-tls-verify=false', '--preserve-digests', `oci:${store}:bench:v1`, `docker://${reg.host}/sk/model:v1`)).ms);
      const out = join(base, 'sk-out');
      warmPages(sizeMib << 20);
      res.skPull.push((await skopeo('copy', '--src-tls-verify=false', '--preserve-digests', '--dest-oci-accept-uncompressed-layers', `docker://${reg.host}/sk/model:v1`, `oci:${out}:m`)).ms);
      rmSync(out, { recursive: true, force: true });
      await reg.stop();
      reg = await startRegistry(kind);
      let m = await mpk(store, 'push', '-q', 'bench:v1', `${reg.host}/mpk/model:v1`);
      res.mpkPush.push(m.ms);
      res.mpkPushRss.push(m.rssKb);
      res.noop.push((await mpk(store, 'push', '-q', 'bench:v1', `${reg.host}/mpk/model:v1`)).ms);
      const fresh = join(base, 'pull-store');
      warmPages(sizeMib << 20);
      m = await mpk(fresh, 'pull', '-q', `${reg.host}/mpk/model:v1`);
      res.mpkPull.push(m.ms);
      res.mpkPullRss.push(m.rssKb);
      rmSync(fresh, { recursive: true, force: true });
      warmPages(sizeMib << 20);
      res.fetch.push(await fetchFloor(reg, 'mpk/model', blobs));
      await reg.stop();
      reg = await startRegistry(kind);
      res.upload.push(await uploadFloor(reg, 'floor/model', blobs));
      await reg.stop();
      process.stderr.write(`${kind} ${sizeMib} MiB: run ${r + 1}/${RUNS} done\n`);
    }
    const md = Object.fromEntries(Object.entries(res).map(([k, v]) => [k, median(v)]));
    printRuns(res);
    console.log(`\n== ${sizeMib} MiB model (2 shards + 3 small files) on ${kind === 'docker' ? 'docker-registry 2.8' : 'mpk serve'}, 127.0.0.1, medians of ${RUNS}`);
    console.log(`push: mpk ${fmt(md.mpkPush)} (${rate(sizeMib, md.mpkPush)}, RSS ${mib(md.mpkPushRss)})  skopeo ${fmt(md.skPush)}  curl upload floor ${fmt(md.upload)}`);
    console.log(`      mpk speed ${speed(md.skPush, md.mpkPush)}x skopeo (target >= 1.2), ${speed(md.upload, md.mpkPush)}x the upload floor (target >= 0.95)`);
    console.log(`pull: mpk ${fmt(md.mpkPull)} (${rate(sizeMib, md.mpkPull)}, RSS ${mib(md.mpkPullRss)})  skopeo ${fmt(md.skPull)}  curl fetch floor ${fmt(md.fetch)} (${rate(sizeMib, md.fetch)})`);
    console.log(`      mpk speed ${speed(md.skPull, md.mpkPull)}x skopeo, ${speed(md.fetch, md.mpkPull)}x the fetch floor (target >= 0.95)`);
    console.log(`no-op re-push ${fmt(md.noop)} (includes node start-up); peak RSS max ${mib(Math.max(...res.mpkPushRss, ...res.mpkPullRss))} (target < 150 MB)`);
  }
  rmSync(store, { recursive: true, force: true });
}

async function smallModel() {
  const dir = join(base, 'small');
  makeSmall(dir);
  const store = join(base, 'store-small');
  await mpk(store, 'build', '-q', '-t', 'smallbench:v1', dir);
  setAside(dir);
  const blobs = storeBlobs(store);
  for (const kind of REGISTRIES) {
    const res = { push: [], pull: [], noop: [], pushRss: [], pullRss: [], fetch: [], upload: [], sk: [] };
    for (let r = 0; r < RUNS; r++) {
      let reg = await startRegistry(kind, true);
      const push = await mpk(store, 'push', '-q', 'smallbench:v1', `${reg.host}/mpk/small:v1`);
      res.push.push(push.ms);
      res.pushRss.push(push.rssKb);
      res.noop.push((await mpk(store, 'push', '-q', 'smallbench:v1', `${reg.host}/mpk/small:v1`)).ms);
      // Untimed, once: the registry answers the pull and the fetch floor after it warmed up (a fresh
      // `mpk serve` runs its first few thousand GETs unoptimized: the step that came first, always
      // mpk's pull, paid for it; a registry in use is warm). And they take turns going first.
      await fetchFloor(reg, 'mpk/small', blobs);
      const floorFirst = r % 2 === 1;
      if (floorFirst) res.fetch.push(await fetchFloor(reg, 'mpk/small', blobs));
      const fresh = join(base, 'pull-small');
      const pull = await mpk(fresh, 'pull', '-q', `${reg.host}/mpk/small:v1`);
      res.pull.push(pull.ms);
      res.pullRss.push(pull.rssKb);
      setAside(fresh);
      if (!floorFirst) res.fetch.push(await fetchFloor(reg, 'mpk/small', blobs));
      await reg.stop();
      reg = await startRegistry(kind, true); // the upload floor stores every blob anew, as mpk's push did
      res.upload.push(await uploadFloor(reg, 'floor/small', blobs));
      if (SKOPEO_SMALL) res.sk.push((await skopeo('copy', '--dest-tls-verify=false', '--preserve-digests', `oci:${store}:smallbench:v1`, `docker://${reg.host}/sk/small:v1`)).ms);
      await reg.stop();
      process.stderr.write(`${kind} ${FILES} files: run ${r + 1}/${RUNS} done\n`);
    }
    const md = Object.fromEntries(Object.entries(res).filter(([, v]) => v.length).map(([k, v]) => [k, median(v)]));
    printRuns(res);
    const per = (ms) => `${(ms / blobs.length).toFixed(2)} ms/blob`;
    console.log(`\n== ${blobs.length} blobs (${FILES} files: a blob each, or a tar per directory where mpk groups them) on ${kind === 'docker' ? 'docker-registry 2.8' : 'mpk serve'}, medians of ${RUNS}`);
    console.log(`push: mpk ${fmt(md.push)} = ${per(md.push)} (RSS ${mib(md.pushRss)}); curl upload floor ${fmt(md.upload)} = ${per(md.upload)} -> mpk takes ${(md.push / md.upload).toFixed(2)}x the floor's time (target <= 1.5)`);
    if (md.sk) console.log(`      skopeo ${fmt(md.sk)} -> mpk speed ${speed(md.sk, md.push)}x skopeo`);
    console.log(`pull: mpk ${fmt(md.pull)} = ${per(md.pull)} (RSS ${mib(md.pullRss)}); curl fetch floor ${fmt(md.fetch)} = ${per(md.fetch)} -> mpk takes ${(md.pull / md.fetch).toFixed(2)}x the floor's time (target <= 1.5)`);
    console.log(`no-op re-push ${fmt(md.noop)}`);
  }
  setAside(store);
}

try {
  // `npm run build`: the library, then the command's bundle that bin/mpk.js runs.
  spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
  spawnSync(process.execPath, [join(root, 'scripts', 'bundle.mjs')], { stdio: 'inherit' });
  for (const size of SIZES) await bigModel(size);
  if (FILES > 0) await smallModel();
} finally {
  for (const reg of [...running]) await reg.stop();
  rmSync(base, { recursive: true, force: true });
}
