#!/usr/bin/env node
// bench/serve: `mpk serve` against Debian's docker-registry 2.8 on this machine, in the same run,
// with the same client (curl, wrk). Not a test: it prints figures and ratios.
//
//   node bench/serve.mjs [--size-mib 2048] [--runs 5] [--wrk-seconds 10] [--dir /tmp]
//
// 1. Blob upload: POST a session, then `curl -T FILE -X PUT <location>?digest=D` (one streamed
//    PUT, as `skopeo`/`docker push` stream a layer); each run starts each server on a fresh root,
//    after `sync`, so none pays for another's dirty pages. docker-registry fsyncs each upload;
//    mpk serve by default does not, so it also runs with --fsync (a row of its own). Then download:
//    `curl -o /dev/null GET /v2/<name>/blobs/<digest>`. Medians of RUNS, MiB/s.
// 2. Manifest GETs by tag with the OCI Accept header: `wrk -t2 -c16 -dSECONDS`, requests/s.
// Each run also times the store floor: dd copying the blob into a new file (no network, no hash).
// Peak RSS (VmHWM from /proc) of each server over each phase. Targets (issue #4): upload ≥ 3x,
// download ≥ 0.9x, manifest GETs ≥ 4x docker-registry; memory bounded.
// mpk serve runs from dist/ (`npm run bench:serve` builds first), with -q (no access log);
// docker-registry with log level warn and no access log. Servers are stopped by their PIDs.
import { spawnSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, createReadStream, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { PEERS, median, opt, scratch, spawnServe } from './common.mjs';

const SIZE_MIB = Number(opt('size-mib', 2048));
const RUNS = Number(opt('runs', 5));
const WRK_S = Number(opt('wrk-seconds', 10));
const base = scratch('mpk-bench-serve-');
const live = new Set(); // servers to stop on the way out

const mibs = (bytes, s) => bytes / 1048576 / s;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

function hwmKb(pid) {
  try {
    return Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
  } catch {
    return 0;
  }
}

/** Polls the server's peak RSS while it lives (VmHWM is kept by the kernel; polled for safety). */
function watch(srv) {
  const t = setInterval(() => (srv.hwm = Math.max(srv.hwm, hwmKb(srv.pid))), 200);
  t.unref();
  return () => {
    clearInterval(t);
    srv.hwm = Math.max(srv.hwm, hwmKb(srv.pid));
  };
}

async function startDocker(data) {
  const port = await freePort();
  const r = spawnSync('bash', [join(PEERS, 'registry-up.sh'), String(port), data], {
    encoding: 'utf8',
    env: { ...process.env, REGISTRY_LOG_LEVEL: 'warn', RUN_DIR: join(base, `run-${port}`) },
  });
  if (r.status !== 0) throw new Error(`registry-up.sh failed: ${r.stderr}`);
  const srv = { name: 'docker-registry', url: `http://127.0.0.1:${port}`, pid: Number(r.stdout.trim()), hwm: 0 };
  srv.stop = async () => {
    srv.unwatch?.();
    spawnSync('bash', [join(PEERS, 'registry-down.sh'), String(srv.pid)], { stdio: 'ignore' });
    live.delete(srv);
  };
  srv.unwatch = watch(srv);
  live.add(srv);
  return srv;
}

async function startMpkFsync(data) {
  return startMpk(data, ['--fsync'], 'mpk serve --fsync');
}

async function startMpk(data, extra = [], name = 'mpk serve') {
  const srv = await spawnServe(['--root', data, '-q', ...extra], live);
  Object.assign(srv, { name, hwm: 0 });
  srv.unwatch = watch(srv);
  return srv;
}

function curl(argv) {
  const r = spawnSync('curl', ['-sS', ...argv], { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`curl ${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** POST a session; the Location resolved against the server (docker's is absolute, mpk's relative). */
function session(srv, name) {
  const headers = curl(['-D', '-', '-o', '/dev/null', '-X', 'POST', '-H', 'Content-Length: 0', `${srv.url}/v2/${name}/blobs/uploads/`]);
  const loc = /^location:\s*(\S+)/im.exec(headers)?.[1];
  if (!loc) throw new Error(`${srv.name}: no Location in ${headers}`);
  return new URL(loc, srv.url);
}

function upload(srv, name, file, digest, size) {
  const u = session(srv, name);
  u.searchParams.set('digest', digest);
  const out = curl(['-o', '/dev/null', '-w', '%{http_code} %{time_total}', '-T', file, '-X', 'PUT', '-H', 'Content-Type: application/octet-stream', u.toString()]);
  const [code, t] = out.trim().split(' ');
  if (code !== '201') throw new Error(`${srv.name}: upload answered ${code}`);
  return mibs(size, Number(t));
}

function download(srv, name, digest, size) {
  const out = curl(['-o', '/dev/null', '-w', '%{http_code} %{time_total} %{size_download}', `${srv.url}/v2/${name}/blobs/${digest}`]);
  const [code, t, n] = out.trim().split(' ');
  if (code !== '200' || Number(n) !== size) throw new Error(`${srv.name}: download answered ${code} with ${n} bytes`);
  return mibs(size, Number(t));
}

function pushSmall(srv, name, file, bytes) {
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const u = session(srv, name);
  u.searchParams.set('digest', digest);
  const code = curl(['-o', '/dev/null', '-w', '%{http_code}', '-X', 'PUT', '-H', 'Content-Type: application/octet-stream', '--data-binary', `@${file}`, u.toString()]);
  if (code !== '201') throw new Error(`${srv.name}: small upload answered ${code}`);
  return digest;
}

function manifestRate(srv) {
  const cfgFile = join(base, 'config.json');
  const cfg = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
  writeBytes(cfgFile, cfg);
  const cd = pushSmall(srv, 'bench/manifest', cfgFile, cfg);
  const manifest = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cd, size: cfg.length }, layers: [] });
  const mFile = join(base, 'manifest.json');
  writeBytes(mFile, Buffer.from(manifest));
  const code = curl(['-o', '/dev/null', '-w', '%{http_code}', '-X', 'PUT', '-H', 'Content-Type: application/vnd.oci.image.manifest.v1+json', '--data-binary', `@${mFile}`, `${srv.url}/v2/bench/manifest/manifests/v1`]);
  if (code !== '201') throw new Error(`${srv.name}: manifest PUT answered ${code}`);
  const r = spawnSync('wrk', ['-t2', '-c16', `-d${WRK_S}s`, '-H', 'Accept: application/vnd.oci.image.manifest.v1+json', `${srv.url}/v2/bench/manifest/manifests/v1`], { encoding: 'utf8' });
  const rate = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1]);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(r.stdout)?.[1];
  if (!rate || non2xx) throw new Error(`${srv.name}: wrk: ${r.stdout}${r.stderr}`);
  return { rate, latency: /Latency\s+(\S+)/.exec(r.stdout)?.[1] };
}

function writeBytes(file, bytes) {
  const fd = openSync(file, 'w');
  writeSync(fd, bytes);
  closeSync(fd);
}

function makeBlob(file) {
  const fd = openSync(file, 'w');
  const chunk = Buffer.allocUnsafe(64 * 1048576);
  for (let left = SIZE_MIB * 1048576; left > 0; left -= chunk.length) {
    randomFillSync(chunk);
    writeSync(fd, chunk, 0, Math.min(chunk.length, left));
  }
  closeSync(fd);
}

async function sha256File(file) {
  const h = createHash('sha256');
  for await (const c of createReadStream(file, { highWaterMark: 1 << 20 })) h.update(c);
  return `sha256:${h.digest('hex')}`;
}

const flush = () => spawnSync('sync');

/**
 * What storing the bytes costs with nothing else: `dd` copying the blob (warm in the page cache)
 * into a new file. No server that keeps an upload can take it faster than this; on this VM it
 * varies with how recently the memory was used.
 */
function copyFloor(file, out, size) {
  flush();
  const t0 = process.hrtime.bigint();
  const r = spawnSync('dd', [`if=${file}`, `of=${out}`, 'bs=1M', 'status=none']);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`dd: ${r.stderr}`);
  rmSync(out, { force: true });
  return mibs(size, s);
}
const fmt = (x) => x.toFixed(0).padStart(6);
const mb = (kb) => `${(kb / 1024).toFixed(0)} MiB`;

async function main() {
  for (const tool of ['curl', 'wrk', '/usr/bin/docker-registry']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) throw new Error(`${tool} is not installed (apt-get install -y curl wrk docker-registry)`);
  }
  const file = join(base, 'blob.bin');
  process.stdout.write(`bench/serve: ${SIZE_MIB} MiB random blob, ${RUNS} runs, wrk ${WRK_S} s; work dir ${base}\n`);
  makeBlob(file);
  const size = SIZE_MIB * 1048576;
  const digest = await sha256File(file);
  const results = {};
  for (const n of ['docker-registry', 'mpk serve', 'mpk serve --fsync']) results[n] = { up: [], down: [], hwmBlob: 0 };
  const starters = [startDocker, startMpk, startMpkFsync];
  const floor = [];
  for (let run = 1; run <= RUNS; run++) {
    floor.push(copyFloor(file, join(base, `floor-${run}`), size));
    process.stdout.write(`  run ${run} store floor       copy   ${fmt(floor[floor.length - 1])} MiB/s  (dd of the blob into a new file: no network, no hashing)\n`);
    const order = starters.map((_, i) => starters[(i + run - 1) % starters.length]);
    for (const start of order) {
      const data = join(base, `data-${run}-${start.name}`);
      const srv = await start(data);
      flush();
      const up = upload(srv, 'bench/blob', file, digest, size);
      download(srv, 'bench/blob', digest, size); // warm: the blob is in the page cache for both servers alike
      const down = download(srv, 'bench/blob', digest, size);
      await srv.stop();
      const r = results[srv.name];
      r.up.push(up);
      r.down.push(down);
      r.hwmBlob = Math.max(r.hwmBlob, srv.hwm);
      process.stdout.write(`  run ${run} ${srv.name.padEnd(17)} upload ${fmt(up)} MiB/s  download ${fmt(down)} MiB/s  peak RSS ${mb(srv.hwm)}\n`);
      rmSync(data, { recursive: true, force: true });
    }
  }
  const rates = {};
  for (const start of [startDocker, startMpk]) {
    const data = join(base, `data-wrk-${start.name}`);
    const srv = await start(data);
    const m = manifestRate(srv);
    await srv.stop();
    rates[srv.name] = { ...m, hwm: srv.hwm };
    process.stdout.write(`  manifest GETs ${srv.name.padEnd(17)} ${m.rate.toFixed(0)} req/s (avg latency ${m.latency})  peak RSS ${mb(srv.hwm)}\n`);
  }
  const d = results['docker-registry'];
  const m = results['mpk serve'];
  const f = results['mpk serve --fsync'];
  // Ratios of one run's neighbouring measurements, then their median: steadier than a ratio of
  // medians when other work on the machine comes and goes.
  const perRun = (key, mine) => median(d[key].map((dv, i) => mine[key][i] / dv));
  const row = (what, dv, mv, unit, target, ratio = mv / dv) => {
    return `| ${what} | ${dv.toFixed(0)} ${unit} | ${mv.toFixed(0)} ${unit} | **${ratio.toFixed(2)}x** | ≥ ${target}x ${ratio >= target ? 'met' : 'NOT met'} |`;
  };
  const lines = [
    '',
    `Medians of ${RUNS} runs (${SIZE_MIB} MiB blob; curl client; fresh roots; sync before each upload;`,
    'ratios: median of the per-run ratios; load average at the end ' + readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ') + '):',
    '',
    '| measurement | docker-registry 2.8 | mpk serve | ratio | target |',
    '|---|---|---|---|---|',
    row('blob upload (POST + streamed PUT)', median(d.up), median(m.up), 'MiB/s', 3, perRun('up', m)),
    `| store floor: dd of the blob into a new file (no network, no hash) | ${median(d.up).toFixed(0)} MiB/s | ${median(floor).toFixed(0)} MiB/s | ${(median(floor) / median(d.up)).toFixed(2)}x | the most any upload can reach |`,
    row('blob download (GET)', median(d.down), median(m.down), 'MiB/s', 0.9, perRun('down', m)),
    `| blob upload with \`mpk serve --fsync\` (durable, as docker-registry) | ${median(d.up).toFixed(0)} MiB/s | ${median(f.up).toFixed(0)} MiB/s | ${perRun('up', f).toFixed(2)}x | (disk-bound: synced writes ~360 MiB/s here) |`,
    row(`manifest GET by tag, wrk -c16 ${WRK_S}s`, rates['docker-registry'].rate, rates['mpk serve'].rate, 'req/s', 4),
    `| peak RSS, blob phase | ${mb(d.hwmBlob)} | ${mb(Math.max(m.hwmBlob, f.hwmBlob))} | | bounded (no blob in memory) |`,
    `| peak RSS, manifest phase | ${mb(rates['docker-registry'].hwm)} | ${mb(rates['mpk serve'].hwm)} | | |`,
    '',
  ];
  process.stdout.write(lines.join('\n'));
}

try {
  await main();
} catch (e) {
  process.stderr.write(`bench/serve failed: ${e.stack ?? e}\n`);
  process.exitCode = 1;
} finally {
  for (const s of [...live]) await s.stop().catch(() => undefined);
  rmSync(base, { recursive: true, force: true });
}
