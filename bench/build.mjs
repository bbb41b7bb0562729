#!/usr/bin/env node
// bench/build: mpk build against hash-only baselines measured in the same run, on the same files.
//
//   node bench/build.mjs [--size-mib 2048] [--files 10000] [--runs 3] [--dir /tmp]
//
// 1. A multi-file model of SIZE MiB (4 weight shards of random bytes + small files):
//    `openssl dgst -sha256` over the files (hash-only baseline) vs `mpk build` into a fresh store
//    (read once, hash, copy into the store). Prints the ratio and mpk's peak RSS, then the time of
//    a no-change rebuild.
// 2. A model of FILES small files: `tar -c | sha256sum` vs `mpk build`; prints the ratio and the
//    manifest size (registries accept 4 MiB).
// Medians of RUNS. Files are warm in the page cache for every contender.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync, openSync, writeSync, closeSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { MPK as MPK_BIN, fmt, median, opt, root, scratch } from './common.mjs';

const SIZE_MIB = Number(opt('size-mib', 2048));
const FILES = Number(opt('files', 10000));
const RUNS = Number(opt('runs', 3));
const base = scratch('mpk-bench-');
const MPK = [MPK_BIN];
const RSS = join(root, 'bench', 'rss.cjs');

function timed(cmd, argv, opts = {}) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, argv, { encoding: 'utf8', maxBuffer: 1 << 28, ...opts });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed (${r.status}): ${r.stderr}`);
  const rss = /BENCH_MAXRSS_KB=(\d+)/.exec(r.stderr ?? '');
  return { ms, rssKb: rss ? Number(rss[1]) : undefined, stdout: r.stdout };
}
const mpk = (home, ...a) => timed(process.execPath, ['--require', RSS, ...MPK, ...a], { env: { ...process.env, MPK_HOME: home } });
const sh = (script) => timed('bash', ['-c', script]);

try {
  // ---- 1. large model
  if (SIZE_MIB > 0) {
  const big = join(base, 'big');
  mkdirSync(big);
  const shards = 4;
  const shardMiB = Math.ceil(SIZE_MIB / shards);
  const block = randomBytes(1 << 20);
  for (let s = 0; s < shards; s++) {
    const fd = openSync(join(big, `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`), 'w');
    for (let i = 0; i < shardMiB; i++) {
      block.writeUInt32LE(s * 100000 + i, 0); // distinct blocks: no accidental dedup
      writeSync(fd, block);
    }
    closeSync(fd);
  }
  writeFileSync(join(big, 'config.json'), JSON.stringify({ model_type: 'llama', torch_dtype: 'bfloat16' }));
  writeFileSync(join(big, 'tokenizer.json'), JSON.stringify({ vocab: Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`t${i}`, i])) }));
  writeFileSync(join(big, 'README.md'), '# bench model\n');
  const files = ['config.json', 'tokenizer.json', 'README.md', ...Array.from({ length: shards }, (_, s) => `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`)].map((f) => join(big, f));
  const totalBytes = files.reduce((n, f) => n + statSync(f).size, 0);
  sh(`cat ${files.join(' ')} > /dev/null`); // warm the page cache for everyone

  const base1 = [];
  const build1 = [];
  const rss1 = [];
  const rebuild = [];
  for (let r = 0; r < RUNS; r++) {
    base1.push(sh(`openssl dgst -sha256 ${files.join(' ')} > /dev/null`).ms);
    const home = join(base, `home-${r}`);
    const b = mpk(home, 'build', '-q', '-t', 'bench/big:1', big);
    build1.push(b.ms);
    rss1.push(b.rssKb);
    const again = mpk(home, 'build', '-q', '-t', 'bench/big:1', big);
    rebuild.push(again.ms);
    rmSync(home, { recursive: true, force: true });
  }
  const mib = totalBytes / 1048576;
  console.log(`\n== large model: ${files.length} files, ${mib.toFixed(0)} MiB (median of ${RUNS})`);
  console.log(`openssl dgst -sha256 (hash only)   ${fmt(median(base1))}  ${(mib / (median(base1) / 1000)).toFixed(0)} MiB/s`);
  console.log(`mpk build (hash + copy to store)   ${fmt(median(build1))}  ${(mib / (median(build1) / 1000)).toFixed(0)} MiB/s`);
  console.log(`ratio mpk/openssl                  ${(median(build1) / median(base1)).toFixed(2)}x   (target <= 1.3x)`);
  console.log(`mpk peak RSS                       ${(Math.max(...rss1) / 1024).toFixed(0)} MiB   (target < 150 MB)`);
  console.log(`no-change rebuild                  ${fmt(median(rebuild))}   (target < 1 s)`);
  rmSync(big, { recursive: true, force: true });
  }

  // ---- 2. many small files
  const small = join(base, 'small');
  for (let i = 0; i < FILES; i++) {
    const d = join(small, 'data', `part-${String(Math.floor(i / 1000)).padStart(2, '0')}`);
    if (i % 1000 === 0) mkdirSync(d, { recursive: true });
    writeFileSync(join(d, `shard-${String(i).padStart(5, '0')}.jsonl`), randomBytes(1024 + ((i * 7919) % 7168)));
  }
  writeFileSync(join(small, 'model.safetensors'), randomBytes(1 << 20));
  writeFileSync(join(small, 'Modelfile'), 'NAME small\nMODEL model.safetensors\nDATASET data/**\n');
  sh(`tar -cf - -C ${small} . > /dev/null`); // warm
  const base2 = [];
  const create2 = [];
  const build2 = [];
  const grouped2 = [];
  let manifestBytes = 0;
  for (let r = 0; r < RUNS; r++) {
    base2.push(sh(`tar -cf - -C ${small} . | sha256sum > /dev/null`).ms);
    // A second floor: the same number of files created on this file system (mpk stores one blob per file).
    const copy = join(base, `copy-${r}`);
    mkdirSync(copy);
    create2.push(sh(`tar -cf - -C ${small} . | tar -xf - -C ${copy}`).ms);
    rmSync(copy, { recursive: true, force: true });
    const home = join(base, `home-small-${r}`);
    build2.push(mpk(home, 'build', '-q', '-t', 'bench/small:1', small).ms);
    grouped2.push(mpk(join(base, `home-grouped-${r}`), 'build', '-q', '--group-small-files', '-t', 'bench/small:1', small).ms);
    rmSync(join(base, `home-grouped-${r}`), { recursive: true, force: true });
    const insp = JSON.parse(mpk(home, 'inspect', '--json', 'bench/small:1').stdout);
    manifestBytes = Buffer.byteLength(JSON.stringify(insp.manifest)); // canonical JSON: same length as stored
    rmSync(home, { recursive: true, force: true });
  }
  console.log(`\n== ${FILES + 1} small files (median of ${RUNS})`);
  console.log(`tar -c | sha256sum                 ${fmt(median(base2))}`);
  console.log(`mpk build                          ${fmt(median(build2))}`);
  console.log(`ratio mpk/(tar+sha256sum)          ${(median(build2) / median(base2)).toFixed(2)}x   (target <= 2x)`);
  console.log(`mpk build --group-small-files      ${fmt(median(grouped2))}`);
  console.log(`ratio grouped/(tar+sha256sum)      ${(median(grouped2) / median(base2)).toFixed(2)}x`);
  console.log(`tar -c | tar -x (creates the files) ${fmt(median(create2))}`);
  console.log(`ratio mpk/(tar -c | tar -x)        ${(median(build2) / median(create2)).toFixed(2)}x`);
  console.log(`manifest size                      ${(manifestBytes / 1048576).toFixed(2)} MiB (limit 4 MiB)`);
} finally {
  rmSync(base, { recursive: true, force: true });
}
