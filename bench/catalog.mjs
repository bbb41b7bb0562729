#!/usr/bin/env node
// bench/catalog: the web catalog of `mpk serve` with 1,000 repositories and 10,000 tags.
// Not a test: it prints figures and ratios.
//
//   node bench/catalog.mjs [--repos 1000] [--tags 10] [--requests 200] [--dir /tmp]
//
// 1. Fills a fresh root through the registry API (each repository: a config, a weight and a README
//    blob, then TAGS ModelPack manifests), with `mpk serve` from dist/ (`npm run bench:catalog`
//    builds first) in its own process, -q.
// 2. The first catalog request builds the index (a walk of the registry, timed once); then
//    REQUESTS sequential GETs (one kept-alive connection) of: the catalog page, a filtered and
//    sorted page, a deep page, a model page already seen (its details cached) and model pages
//    never seen (each one read from the store); each row after 5 warm-up requests. Medians and
//    p90 of the time to the last byte, in
//    ms, on 127.0.0.1: that is the server's time plus a loopback round trip. Target (issue #17):
//    ≤ 50 ms per page at the median. Baseline in the same run: GET /v2/ (the cheapest answer).
// 3. The registry's own speed: manifest GETs by tag, the same server with the catalog on and,
//    restarted on the same root, with --no-catalog (the catalog adds one path test per request
//    and one Set.add per manifest push). Ratio of medians.
// The server is stopped by its PID.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { MPK, median, opt, scratch } from './common.mjs';

const REPOS = Number(opt('repos', 1000));
const TAGS = Number(opt('tags', 10));
const N = Number(opt('requests', 200));
const base = scratch('mpk-bench-catalog-');
const root = join(base, 'root');
const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
let live;

const sha = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function startServe(extra = []) {
  const child = spawn(process.execPath, [MPK, 'serve', '--root', root, '--addr', '127.0.0.1:0', '-q', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  for (let i = 0; i < 400 && !/listening on/.test(out); i++) await new Promise((r) => setTimeout(r, 25));
  const url = /listening on (http:\/\/[0-9.:]+)/.exec(out)?.[1];
  if (!url) throw new Error(`mpk serve did not start: ${out}`);
  live = child;
  return { url, stop: () => new Promise((r) => { child.once('exit', r); process.kill(child.pid, 'SIGTERM'); }) };
}

function req(url, { method = 'GET', body, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const r = http.request(url, { method, agent, headers: body ? { 'content-length': body.length, ...headers } : headers }, (res) => {
      const parts = [];
      res.on('data', (c) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(parts), ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
    });
    r.on('error', reject);
    r.end(body);
  });
}

async function putBlob(url, name, bytes) {
  const d = sha(bytes);
  const r = await req(`${url}/v2/${name}/blobs/uploads/?digest=${d}`, { method: 'POST', body: bytes, headers: { 'content-type': 'application/octet-stream' } });
  if (r.status !== 201) throw new Error(`blob ${name}: ${r.status} ${r.body}`);
  return { digest: d, size: bytes.length };
}

const ARCHES = ['llama', 'qwen2', 'gemma2', 'phi3', 'mistral'];
const QUANTS = ['Q4_K_M', 'Q5_K_M', 'Q8_0', 'F16'];

async function fillRepo(url, i) {
  const name = `bench/repo-${String(i).padStart(4, '0')}`;
  const weight = await putBlob(url, name, Buffer.alloc(4096, i % 251));
  const readme = await putBlob(url, name, Buffer.from(`# Model ${i}\n\nA benchmark model with a **card**.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n`));
  for (let t = 0; t < TAGS; t++) {
    const config = Buffer.from(JSON.stringify({ descriptor: { name: `repo-${i}` }, modelfs: { type: 'layers', diffIds: [weight.digest, readme.digest] }, config: { architecture: ARCHES[i % ARCHES.length], format: 'gguf', paramSize: `${1 + (i % 13)}B`, quantization: QUANTS[t % QUANTS.length] } }));
    const c = await putBlob(url, name, config);
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: 'application/vnd.cncf.model.manifest.v1+json',
      config: { mediaType: 'application/vnd.cncf.model.config.v1+json', ...c },
      layers: [
        { mediaType: 'application/vnd.cncf.model.weight.v1.raw', ...weight, annotations: { 'org.cncf.model.filepath': 'model.gguf' } },
        { mediaType: 'application/vnd.cncf.model.doc.v1.raw', ...readme, annotations: { 'org.cncf.model.filepath': 'README.md' } },
      ],
    }));
    const r = await req(`${url}/v2/${name}/manifests/t${t}`, { method: 'PUT', body: manifest, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
    if (r.status !== 201) throw new Error(`manifest ${name}:t${t}: ${r.status} ${r.body}`);
  }
}

async function times(urls) {
  for (let i = 0; i < 5; i++) await req(urls(N + i)); // warm-up (JIT, caches of the registry itself)
  const ms = [];
  for (let i = 0; i < N; i++) {
    const r = await req(urls(i));
    if (r.status !== 200) throw new Error(`${urls(i)}: ${r.status}`);
    ms.push(r.ms);
  }
  const sorted = [...ms].sort((a, b) => a - b);
  return { median: median(ms), p90: sorted[Math.floor(sorted.length * 0.9)] };
}

const f = (x) => x.toFixed(2).padStart(8);

try {
  let srv = await startServe();
  const t0 = Date.now();
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < REPOS) await fillRepo(srv.url, next++);
  }));
  console.log(`filled ${REPOS} repositories × ${TAGS} tags in ${((Date.now() - t0) / 1000).toFixed(1)} s (under load: the machine is shared)`);
  const cold = await req(`${srv.url}/`);
  console.log(`first catalog request (builds the index: ${REPOS * TAGS} tags): ${cold.ms.toFixed(0)} ms`);
  const pick = (i) => `bench/repo-${String((i * 37) % REPOS).padStart(4, '0')}`;
  const rows = [
    ['GET /v2/ (baseline)', await times(() => `${srv.url}/v2/`)],
    ['catalog page 1', await times(() => `${srv.url}/`)],
    ['filtered + sorted', await times((i) => `${srv.url}/?q=repo-0${i % 10}&arch=llama&sort=size`)],
    ['page 15, by date', await times(() => `${srv.url}/?page=15&sort=date`)],
    ['model page (seen)', await times(() => `${srv.url}/r/${pick(7)}/-/t${TAGS - 1}`)],
    ['model page (new)', await times((i) => `${srv.url}/r/${pick(i)}/-/t${i % TAGS}`)],
    ['repository page', await times((i) => `${srv.url}/r/${pick(i)}`)],
    ['JSON API catalog', await times(() => `${srv.url}/-/api/catalog`)],
  ];
  const baseline = rows[0][1].median;
  console.log(`\n${'request'.padEnd(22)}${'median ms'.padStart(10)}${'p90 ms'.padStart(9)}  × baseline`);
  for (const [label, r] of rows) console.log(`${label.padEnd(22)}${f(r.median)}  ${f(r.p90)}  ${(r.median / baseline).toFixed(1)}×`);
  const worst = Math.max(...rows.slice(1).map(([, r]) => r.median));
  console.log(`target ≤ 50 ms per page at the median: ${worst <= 50 ? 'met' : 'NOT met'} (worst median ${worst.toFixed(2)} ms)`);

  // The registry's own speed with and without the catalog, same root, same client.
  const manifestGets = async (url) => (await times((i) => `${url}/v2/${pick(i)}/manifests/t${i % TAGS}`)).median;
  await manifestGets(srv.url); // warm the registry's tag and manifest caches, as for the second server
  const withCatalog = await manifestGets(srv.url);
  await srv.stop();
  srv = await startServe(['--no-catalog']);
  await manifestGets(srv.url); // warm its caches as the first server's were
  const without = await manifestGets(srv.url);
  await srv.stop();
  live = undefined;
  console.log(`\nmanifest GET by tag: ${withCatalog.toFixed(3)} ms with the catalog, ${without.toFixed(3)} ms with --no-catalog (ratio ${(withCatalog / without).toFixed(2)})`);
} finally {
  if (live && live.exitCode === null) process.kill(live.pid, 'SIGKILL');
  agent.destroy();
  rmSync(base, { recursive: true, force: true });
}
