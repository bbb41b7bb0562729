// mpk run against node-llama-cpp called directly on the same GGUF file, in one run, alternating:
// time from process start to the first token, tokens/s, peak RSS. Then `mpk api` with 8
// concurrent streaming clients against direct single-stream generation.
// Targets (issue #12): first token ≤ 1.15x direct, tokens/s ≥ 0.95x, peak RSS ≤ direct + 50 MB;
// API aggregate tokens/s ≥ 0.9x direct.
// Usage: npm run bench:run [-- --runs 5 --tokens 200 --threads 2 --clients 8]
import { spawn, spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { MPK, median, opt, root, scratch } from './common.mjs';

const RUNS = Number(opt('runs', '5'));
const TOKENS = opt('tokens', '200');
const THREADS = opt('threads', String(availableParallelism()));
const CLIENTS = Number(opt('clients', '8'));
const PROMPT = 'Tell me a story about the cat';
const RSS = join(root, 'bench', 'rss.cjs');
const work = scratch('mpk-bench-run-');
const env = { ...process.env, MPK_HOME: join(work, 'store') };

const gguf = join(work, 'model', 'tiny.gguf');
must(spawnSync(process.execPath, ['--import', 'tsx', join(root, 'scripts', 'tiny-llama.ts'), gguf], { cwd: root, encoding: 'utf8' }));
must(spawnSync(process.execPath, [MPK, 'build', '-q', '-t', 'bench/tiny:q8', gguf], { env, encoding: 'utf8' }));
const inspect = JSON.parse(must(spawnSync(process.execPath, [MPK, 'inspect', '--json', 'bench/tiny:q8'], { env, encoding: 'utf8' })).stdout);
const blob = join(env.MPK_HOME, 'blobs', 'sha256', inspect.manifest.layers[0].digest.slice(7));

function must(r) {
  if (r.status !== 0) throw new Error(`${r.stderr}${r.error ?? ''}`);
  return r;
}

/** One process: ms from spawn to its first stdout byte, its tokens/s line, its peak RSS. */
function measure(args) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let first;
    let err = '';
    const child = spawn(process.execPath, ['-r', RSS, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', () => (first ??= performance.now() - t0));
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`${args.join(' ')} exited ${code}: ${err}`));
      const tps = Number(/(?:tokens_per_second=|tokens, )([\d.]+)/.exec(err)?.[1]);
      const rss = Number(/BENCH_MAXRSS_KB=(\d+)/.exec(err)?.[1]);
      resolve({ first, tps, rss });
    });
    child.on('error', reject);
  });
}

const direct = [];
const mpk = [];
const directArgs = [join(root, 'bench', 'direct-llama.mjs'), blob, PROMPT, TOKENS, THREADS];
const mpkArgs = [MPK, 'run', 'bench/tiny:q8', PROMPT, '--temperature', '0', '--max-tokens', TOKENS, '--threads', THREADS, '--verbose'];
for (let i = 0; i < RUNS; i++) {
  // alternate which goes first, so neither always finds a warmer machine
  if (i % 2 === 0) {
    direct.push(await measure(directArgs));
    mpk.push(await measure(mpkArgs));
  } else {
    mpk.push(await measure(mpkArgs));
    direct.push(await measure(directArgs));
  }
}
const m = (xs, k) => median(xs.map((x) => x[k]));
const d = { first: m(direct, 'first'), tps: m(direct, 'tps'), rss: m(direct, 'rss') };
const p = { first: m(mpk, 'first'), tps: m(mpk, 'tps'), rss: m(mpk, 'rss') };
console.log(`mpk run vs node-llama-cpp direct: tiny LLaMA Q8_0, ${TOKENS} tokens, ${THREADS} threads, median of ${RUNS}`);
console.log(`  first token from process start: mpk ${p.first.toFixed(0)} ms, direct ${d.first.toFixed(0)} ms -> ${(p.first / d.first).toFixed(2)}x (target <= 1.15x)`);
console.log(`  tokens/s: mpk ${p.tps.toFixed(1)}, direct ${d.tps.toFixed(1)} -> ${(p.tps / d.tps).toFixed(2)}x (target >= 0.95x)`);
console.log(`  peak RSS: mpk ${(p.rss / 1024).toFixed(0)} MiB, direct ${(d.rss / 1024).toFixed(0)} MiB -> +${((p.rss - d.rss) / 1024).toFixed(0)} MiB (target <= +50 MB)`);

const { apiBench } = await import('./run-api.mjs');
await apiBench({ env, model: 'bench/tiny:q8', clients: CLIENTS, tokens: Number(TOKENS), threads: THREADS, directTps: d.tps });
