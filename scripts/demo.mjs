#!/usr/bin/env node
// The main job on embedded defaults: make a sample model, build it into a fresh store, list,
// inspect, extract, and check every extracted byte against the original files. Uses the real
// `mpk` command (bin/mpk.js). Exits non-zero if anything differs.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const mpkBin = join(root, 'bin', 'mpk.js');
const work = mkdtempSync(join(tmpdir(), 'mpk-demo-'));
const env = { ...process.env, MPK_HOME: join(work, 'store') };
const keep = process.argv.includes('--keep');

function step(title) {
  process.stdout.write(`\n\x1b[1m== ${title}\x1b[0m\n`);
}
function mpk(...args) {
  process.stdout.write(`$ mpk ${args.join(' ')}\n`);
  const r = spawnSync(process.execPath, [mpkBin, ...args], { env, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) {
    process.stderr.write(`demo: mpk ${args[0]} failed with exit code ${r.status}\n`);
    process.exit(1);
  }
}
function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}
const sha = (p) => createHash('sha256').update(readFileSync(p)).digest('hex');

try {
  step('1. A sample model directory');
  const model = join(work, 'tiny-llama');
  mkdirSync(join(model, 'data'), { recursive: true });
  writeFileSync(join(model, 'model.safetensors'), randomBytes(64 * 1024 * 1024));
  writeFileSync(join(model, 'config.json'), JSON.stringify({ architectures: ['LlamaForCausalLM'], model_type: 'llama', torch_dtype: 'bfloat16', transformers_version: '4.44.0' }, null, 2));
  writeFileSync(join(model, 'tokenizer.json'), JSON.stringify({ version: '1.0', model: { type: 'BPE', vocab: { a: 0, b: 1 } } }));
  writeFileSync(join(model, 'README.md'), '# tiny-llama\n\nA demo model made by `npm run demo`; the weights are random bytes.\n');
  writeFileSync(join(model, 'generate.py'), 'print("hello from tiny-llama")\n');
  writeFileSync(join(model, 'data', 'eval.jsonl'), '{"prompt":"2+2","answer":"4"}\n');
  process.stdout.write(`${model}: ${walk(model).length} files, 64 MiB of weights\n`);

  step('2. Generate a Modelfile from the directory');
  mpk('modelfile', 'generate', model, '-o', join(model, 'Modelfile'));
  writeFileSync(join(model, 'Modelfile'), readFileSync(join(model, 'Modelfile'), 'utf8').replace('CONFIG data/eval.jsonl', 'DATASET data/eval.jsonl'));
  process.stdout.write(readFileSync(join(model, 'Modelfile'), 'utf8'));

  step('3. Build it into the local store (then again: nothing is reread)');
  mpk('build', '-t', 'demo/tiny-llama:v1', model);
  mpk('build', '-t', 'demo/tiny-llama:v1', model);

  step('4. List and inspect');
  mpk('ls');
  mpk('inspect', 'demo/tiny-llama:v1');

  step('5. Extract and compare every byte with the original');
  const out = join(work, 'extracted');
  mpk('extract', 'demo/tiny-llama:v1', out);
  const want = walk(model).filter((p) => !p.endsWith('Modelfile')).map((p) => relative(model, p)).sort();
  const got = walk(out).map((p) => relative(out, p)).sort();
  if (JSON.stringify(want) !== JSON.stringify(got)) throw new Error(`extracted files differ: want ${want.join(', ')}; got ${got.join(', ')}`);
  for (const f of want) {
    if (sha(join(model, f)) !== sha(join(out, f))) throw new Error(`${f}: extracted bytes differ from the original`);
    if ((statSync(join(model, f)).mode & 0o111) !== (statSync(join(out, f)).mode & 0o111)) throw new Error(`${f}: mode differs`);
  }
  process.stdout.write(`all ${want.length} files identical (sha256)\n`);

  step('6. Verify the store');
  mpk('verify');
  process.stdout.write('\n\x1b[32mdemo OK\x1b[0m\n');
} catch (e) {
  process.stderr.write(`demo failed: ${e.message}\n`);
  process.exitCode = 1;
} finally {
  if (keep) process.stdout.write(`kept ${work}\n`);
  else rmSync(work, { recursive: true, force: true });
}
