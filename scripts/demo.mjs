#!/usr/bin/env node
// The main job on embedded defaults: make a sample model, build it into a fresh store, list,
// inspect, extract, and check every extracted byte against the original files; then serve a
// registry (`mpk serve`), push to it, pull into a second store, extract and verify again; last,
// build a tiny LLaMA GGUF, push it, and `mpk run` it from a third store (pull, then a streamed answer). Uses the
// real `mpk` command (bin/mpk.js). Exits non-zero if anything differs. The server is stopped by
// the PID this script started.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const mpkBin = join(root, 'bin', 'mpk.js');
const work = mkdtempSync(join(tmpdir(), 'mpk-demo-'));
const env = { ...process.env, MPK_HOME: join(work, 'store'), DOCKER_CONFIG: join(work, 'docker') };
const keep = process.argv.includes('--keep');

function step(title) {
  process.stdout.write(`\n\x1b[1m== ${title}\x1b[0m\n`);
}
function mpk(...args) {
  mpkIn(env, ...args);
}
function mpkIn(environment, ...args) {
  process.stdout.write(`$ mpk ${args.map((a) => (/[\s"'$]/.test(a) ? JSON.stringify(a) : a)).join(' ')}\n`);
  const r = spawnSync(process.execPath, [mpkBin, ...args], { env: environment, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) {
    process.stderr.write(`demo: mpk ${args[0]} failed with exit code ${r.status}\n`);
    process.exit(1);
  }
}
function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}
const sha = (p) => createHash('sha256').update(readFileSync(p)).digest('hex');

/** Every file of `model` (but the Modelfile) is in `out` with the same bytes and executable bit. */
function compareTree(model, out) {
  const want = walk(model).filter((p) => !p.endsWith('Modelfile')).map((p) => relative(model, p)).sort();
  const got = walk(out).map((p) => relative(out, p)).sort();
  if (JSON.stringify(want) !== JSON.stringify(got)) throw new Error(`extracted files differ: want ${want.join(', ')}; got ${got.join(', ')}`);
  for (const f of want) {
    if (sha(join(model, f)) !== sha(join(out, f))) throw new Error(`${f}: extracted bytes differ from the original`);
    if ((statSync(join(model, f)).mode & 0o111) !== (statSync(join(out, f)).mode & 0o111)) throw new Error(`${f}: mode differs`);
  }
  return want.length;
}

/** `mpk serve` in the background on a free loopback port; resolves with its URL and a stop(). */
async function serve(root) {
  process.stdout.write(`$ mpk serve -q --root ${root} --addr 127.0.0.1:0 &   (-q: no access log)\n`);
  const child = spawn(process.execPath, [mpkBin, 'serve', '-q', '--root', root, '--addr', '127.0.0.1:0'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const exited = new Promise((r) => child.once('exit', r));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGTERM');
    return exited;
  };
  server = { stop };
  child.stdout.on('data', (d) => {
    out += d;
    process.stdout.write(String(d));
  });
  for (let i = 0; i < 400 && !/listening on/.test(out); i++) {
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  const url = /listening on (http:\/\/[0-9.:]+)/.exec(out)?.[1];
  if (!url) throw new Error(`mpk serve did not start: ${out}`);
  return { url, host: url.replace('http://', ''), stop };
}
let server;

/** A real safetensors file (header + random data) holding one tensor, so build can read its header. */
function safetensors(name, dtype, shape) {
  const bytes = shape.reduce((a, b) => a * b, 1) * 2;
  let json = JSON.stringify({ __metadata__: { format: 'pt' }, [name]: { dtype, shape, data_offsets: [0, bytes] } });
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([head, Buffer.from(json), randomBytes(bytes)]);
}

try {
  step('1. A sample model directory');
  const model = join(work, 'tiny-llama');
  mkdirSync(join(model, 'data'), { recursive: true });
  writeFileSync(join(model, 'model.safetensors'), safetensors('model.embed_tokens.weight', 'BF16', [8192, 4096]));
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
  process.stdout.write(`all ${compareTree(model, out)} files identical (sha256)\n`);

  step('6. Verify the store');
  mpk('verify');

  step('7. Serve a registry (mpk serve), push the model to it');
  const reg = await serve(join(work, 'registry'));
  const remote = `${reg.host}/demo/tiny-llama:v1`;
  mpk('push', 'demo/tiny-llama:v1', remote);

  step('8. Pull it into a second store, extract, compare every byte, verify');
  const env2 = { ...env, MPK_HOME: join(work, 'store2') };
  const out2 = join(work, 'extracted2');
  mpkIn(env2, 'pull', remote, '--extract', out2);
  process.stdout.write(`all ${compareTree(model, out2)} files identical after the round trip (sha256)\n`);
  mpkIn(env2, 'verify');

  step('9. Run a model: a tiny LLaMA GGUF built, pushed, then run from a fresh store (pulled on the way)');
  const chat = join(work, 'tiny-chat', 'tiny-chat.gguf');
  process.stdout.write(`$ node --import tsx scripts/tiny-llama.ts ${chat}   (random weights: it babbles, but it is a real llama.cpp model)\n`);
  const made = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'scripts', 'tiny-llama.ts'), chat], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  if (made.status !== 0) throw new Error('could not write the tiny LLaMA');
  mpk('build', '-t', 'demo/tiny-chat:q8', chat);
  mpk('push', 'demo/tiny-chat:q8', `${reg.host}/demo/tiny-chat:q8`);
  mpkIn({ ...env, MPK_HOME: join(work, 'store3') }, 'run', `${reg.host}/demo/tiny-chat:q8`, 'Tell me a story about the cat', '--temperature', '0', '--max-tokens', '40');

  step('10. Stop the server; check the registry root');
  await reg.stop();
  mpk('serve', 'verify', '--root', join(work, 'registry'));
  process.stdout.write('\n\x1b[32mdemo OK\x1b[0m\n');
} catch (e) {
  process.stderr.write(`demo failed: ${e.message}\n`);
  process.exitCode = 1;
} finally {
  await server?.stop();
  if (keep) process.stdout.write(`kept ${work}\n`);
  else rmSync(work, { recursive: true, force: true });
}
