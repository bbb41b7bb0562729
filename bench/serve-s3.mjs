#!/usr/bin/env node
// bench/serve-s3: `mpk serve --storage s3://…` on a Ceph RADOS Gateway against the AWS SDK writing
// and reading the same objects directly, in the same run, and the pull-through cache's upstream
// bytes for concurrent pullers. Not a test: it prints figures and ratios.
//
//   node bench/serve-s3.mjs [--size-mib 512] [--runs 3] [--pullers 8] [--dir /tmp]
//
// 1. Upload: curl streams the file in one PUT to an mpk serve session (S3 multipart underneath,
//    hashed as it passes, then a server-side copy under the digest); the baseline is the SDK's own
//    multipart upload of the same file from this process (8 MiB parts, 4 at a time, as mpk does).
// 2. Download: curl GET of the blob through mpk serve (streamed from the bucket), and with
//    --s3-redirect (curl -L follows the 307 to the presigned URL); the baseline is the SDK's
//    GetObject of the same object read to the end. Medians of RUNS, MiB/s, and ratios.
// 3. Proxy: an upstream mpk serve (filesystem) holding the blob, an mpk serve --proxy in front of
//    it, PULLERS curls at once through the proxy: upstream blob bytes (from its JSON access log)
//    divided by the blob size (1.00 = fetched once).
// RGW is started by scripts/peers/ceph-rgw-up.sh and stopped by its PIDs; mpk serve from dist/.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CompleteMultipartUploadCommand, CreateBucketCommand, CreateMultipartUploadCommand, GetObjectCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { median, opt, scratch, spawnServe } from './common.mjs';

const RGW_SCRIPTS = new URL('../scripts/peers/', import.meta.url).pathname;

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'; // the SDK's notice about its 2027 releases
const SIZE_MIB = Number(opt('size-mib', 512));
const RUNS = Number(opt('runs', 3));
const PULLERS = Number(opt('pullers', 8));
const base = scratch('mpk-bench-s3-');
const live = new Set();
const mibs = (bytes, s) => bytes / 1048576 / s;
const PART = 8 * 1024 * 1024;

function curl(argv) {
  const r = spawnSync('curl', ['-sS', ...argv], { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`curl ${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const startMpk = (args, env = {}) => spawnServe(args, live, env);

function upload(url, name, file, digest, size) {
  const headers = curl(['-D', '-', '-o', '/dev/null', '-X', 'POST', '-H', 'Content-Length: 0', `${url}/v2/${name}/blobs/uploads/`]);
  const u = new URL(/^location:\s*(\S+)/im.exec(headers)[1], url);
  u.searchParams.set('digest', digest);
  const [code, t] = curl(['-o', '/dev/null', '-w', '%{http_code} %{time_total}', '-T', file, '-X', 'PUT', '-H', 'Content-Type: application/octet-stream', u.toString()]).trim().split(' ');
  if (code !== '201') throw new Error(`upload answered ${code}`);
  return mibs(size, Number(t));
}

function download(url, size, follow = false) {
  const [code, t, n] = curl([...(follow ? ['-L'] : []), '-o', '/dev/null', '-w', '%{http_code} %{time_total} %{size_download}', url]).trim().split(' ');
  if (code !== '200' || Number(n) !== size) throw new Error(`download answered ${code} with ${n} bytes`);
  return mibs(size, Number(t));
}

async function sdkUpload(s3, bucket, key, file, size) {
  const t0 = performance.now();
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  const parts = [];
  const inflight = new Set();
  const fd = openSync(file, 'r');
  try {
    for (let n = 1, at = 0; at < size; n++, at += PART) {
      const len = Math.min(PART, size - at);
      const buf = Buffer.allocUnsafe(len);
      readSyncAll(fd, buf, at);
      const p = s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: n, Body: buf, ContentLength: len })).then((r) => parts.push({ PartNumber: n, ETag: r.ETag }));
      inflight.add(p);
      p.finally(() => inflight.delete(p));
      while (inflight.size >= 4) await Promise.race(inflight);
    }
    await Promise.all(inflight);
  } finally {
    closeSync(fd);
  }
  parts.sort((a, b) => a.PartNumber - b.PartNumber);
  await s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }));
  return mibs(size, (performance.now() - t0) / 1000);
}

function readSyncAll(fd, buf, pos) {
  for (let off = 0; off < buf.length; ) off += readSync(fd, buf, off, buf.length - off, pos + off);
}

async function sdkDownload(s3, bucket, key, size) {
  const t0 = performance.now();
  const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  let n = 0;
  await pipeline(r.Body, new Writable({ write: (c, _e, cb) => ((n += c.length), cb()) }));
  if (n !== size) throw new Error(`SDK GET gave ${n} bytes`);
  return mibs(size, (performance.now() - t0) / 1000);
}

async function main() {
  const size = SIZE_MIB * 1048576;
  const file = join(base, 'blob');
  const fd = openSync(file, 'w');
  const h = createHash('sha256');
  const chunk = Buffer.alloc(1 << 20);
  for (let i = 0; i < SIZE_MIB; i++) {
    randomFillSync(chunk);
    h.update(chunk);
    writeSync(fd, chunk);
  }
  closeSync(fd);
  const digest = `sha256:${h.digest('hex')}`;

  const rgwDir = join(base, 'rgw');
  const port = 20000 + 2 * Math.floor(Math.random() * 5000);
  const up = spawnSync('bash', [join(RGW_SCRIPTS, 'ceph-rgw-up.sh'), rgwDir, String(port)], { encoding: 'utf8' });
  if (up.status !== 0) throw new Error(`ceph-rgw-up.sh failed: ${up.stderr}`);
  live.add({ stop: async () => spawnSync('bash', [join(RGW_SCRIPTS, 'ceph-rgw-down.sh'), rgwDir, '--purge'], { stdio: 'ignore' }) });
  const env = readFileSync(join(rgwDir, 'env'), 'utf8');
  const get = (k) => new RegExp(`${k}=(\\S+)`).exec(env)[1];
  const endpoint = get('endpoint');
  const creds = { AWS_ACCESS_KEY_ID: get('access'), AWS_SECRET_ACCESS_KEY: get('secret'), AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
  const s3 = new S3Client({
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: creds.AWS_ACCESS_KEY_ID, secretAccessKey: creds.AWS_SECRET_ACCESS_KEY },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const rows = { up: [], upSdk: [], down: [], downRedirect: [], downSdk: [] };
  for (let run = 0; run < RUNS; run++) {
    const bucket = `bench-${run}-${Date.now()}`;
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const plain = await startMpk(['--storage', `s3://${bucket}`, '--s3-endpoint', endpoint, '-q'], creds);
    const redirect = await startMpk(['--storage', `s3://${bucket}`, '--s3-endpoint', endpoint, '--s3-redirect', '-q'], creds);
    // Interleaved: the SDK baseline right after mpk, on the same objects' sizes.
    rows.up.push(upload(plain.url, 'bench/blob', file, digest, size));
    rows.upSdk.push(await sdkUpload(s3, bucket, `direct-${run}`, file, size));
    rows.down.push(download(`${plain.url}/v2/bench/blob/blobs/${digest}`, size));
    rows.downRedirect.push(download(`${redirect.url}/v2/bench/blob/blobs/${digest}`, size, true));
    rows.downSdk.push(await sdkDownload(s3, bucket, `blobs/sha256/${digest.slice(7)}`, size));
    await plain.stop();
    await redirect.stop();
    console.log(`run ${run + 1}: up ${rows.up[run].toFixed(0)} vs SDK ${rows.upSdk[run].toFixed(0)} MiB/s; down ${rows.down[run].toFixed(0)} (redirect ${rows.downRedirect[run].toFixed(0)}) vs SDK ${rows.downSdk[run].toFixed(0)} MiB/s`);
  }
  const m = Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, median(v)]));
  console.log(`\nmedians of ${RUNS}, ${SIZE_MIB} MiB blob on RGW:`);
  console.log(`  upload    mpk serve ${m.up.toFixed(0)} MiB/s, SDK ${m.upSdk.toFixed(0)} MiB/s: ${(m.up / m.upSdk).toFixed(2)}x (target >= 0.8x)`);
  console.log(`  download  mpk serve ${m.down.toFixed(0)} MiB/s, SDK ${m.downSdk.toFixed(0)} MiB/s: ${(m.down / m.downSdk).toFixed(2)}x (target >= 0.9x)`);
  console.log(`  download  --s3-redirect ${m.downRedirect.toFixed(0)} MiB/s: ${(m.downRedirect / m.downSdk).toFixed(2)}x (target ~1.0x)`);

  // The pull-through cache: PULLERS at once, one upstream fetch.
  const upstream = await startMpk(['--root', join(base, 'upstream'), '--log-format', 'json']);
  upload(upstream.url, 'bench/blob', file, digest, size);
  const mark = upstream.output().length;
  const proxy = await startMpk(['--root', join(base, 'proxy'), '--proxy', upstream.url, '-q']);
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: PULLERS }, () =>
      new Promise((resolve, reject) => {
        const c = spawn('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{size_download}', `${proxy.url}/v2/bench/blob/blobs/${digest}`], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        c.stdout.on('data', (d) => (out += d));
        c.on('close', () => (out.trim() === `200 ${size}` ? resolve() : reject(new Error(`a puller got ${out}`))));
      }),
    ),
  );
  const secs = (performance.now() - t0) / 1000;
  const lines = upstream.output().slice(mark).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  const upstreamBytes = lines.filter((e) => e.method === 'GET' && e.url.includes('/blobs/')).reduce((a, e) => a + e.out, 0);
  console.log(`  proxy     ${PULLERS} pullers at once: ${(upstreamBytes / size).toFixed(3)}x the blob fetched upstream (target 1.0x, headers included), ${mibs(size * PULLERS, secs).toFixed(0)} MiB/s served in all`);
}

try {
  await main();
} finally {
  for (const s of [...live].reverse()) await s.stop().catch(() => undefined);
  spawnSync('rm', ['-rf', base]);
}
