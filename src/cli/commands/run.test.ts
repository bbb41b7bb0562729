/**
 * `mpk run` end to end: a tiny LLaMA built, pushed to `mpk serve`, run from a fresh store (pulled
 * on the way), answering token for token as node-llama-cpp itself does on the extracted file;
 * the weights mapped from the store's blob (/proc/PID/maps); a chat on standard input with
 * history; piped prompts; the errors a user meets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mpk } from '../../test-support/cli.js';
import { hasCommand } from '../../test-support/peers.js';
import { directChat, importLlamaCpp } from '../../test-support/llama.js';
import { startTestServer } from '../../test-support/serve.js';
import { tempDir, makeModelDir, writeTree } from '../../test-support/tmp.js';
import { writeTinyLlama } from '../../test-support/tiny-llama.js';

const BIN = new URL('../../test-support/mpk-bin.ts', import.meta.url).pathname;
const GREEDY = ['--temperature', '0', '--threads', '1'];

/** A store holding models/tiny:q8 (the tiny LLaMA), and the weight blob's digest. */
async function tinyStore(dir: string): Promise<{ env: NodeJS.ProcessEnv; gguf: string; digest: string }> {
  const gguf = join(dir, 'model', 'tiny.gguf');
  await writeTree(dir, { 'model/.keep': '' });
  await writeTinyLlama(gguf);
  const env = { MPK_HOME: join(dir, 'store'), DOCKER_CONFIG: join(dir, 'docker') };
  const b = await mpk(env, dir, 'build', '-t', 'models/tiny:q8', gguf);
  assert.equal(b.code, 0, b.stderr);
  const i = await mpk(env, dir, 'inspect', '--json', 'models/tiny:q8');
  const layer = (JSON.parse(i.stdout) as { manifest: { layers: Array<{ digest: string }> } }).manifest.layers[0]!;
  return { env, gguf, digest: layer.digest };
}

interface Child {
  pid: number;
  stdout(): string;
  stderr(): string;
  write(s: string): void;
  end(): void;
  waitFor(re: RegExp, ms?: number): Promise<void>;
  exit: Promise<number | null>;
}

function spawnMpk(t: { after(fn: () => unknown): void }, env: NodeJS.ProcessEnv, args: string[], nodeArgs: string[] = []): Child {
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', BIN, ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return {
    pid: child.pid!,
    stdout: () => out,
    stderr: () => err,
    write: (s) => void child.stdin.write(s),
    end: () => child.stdin.end(),
    exit,
    async waitFor(re, ms = 30_000) {
      const deadline = Date.now() + ms;
      while (!re.test(out)) {
        if (child.exitCode !== null) throw new Error(`mpk exited (${child.exitCode}) before ${re}: ${out} ${err}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${re}: ${out} ${err}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

test('mpk run pulls a missing model from mpk serve and answers as node-llama-cpp does on the extracted file', async (t) => {
  const lib = await importLlamaCpp(t);
  if (!lib) return;
  const dir = await tempDir(t);
  const a = await tinyStore(join(dir, 'a'));
  const server = await startTestServer(t);
  const remote = `${server.host}/team/tiny:q8`;
  const p = await mpk(a.env, dir, 'push', 'models/tiny:q8', remote);
  assert.equal(p.code, 0, p.stderr);

  const fresh = { MPK_HOME: join(dir, 'b'), DOCKER_CONFIG: join(dir, 'docker') };
  const r = await mpk(fresh, dir, 'run', remote, 'Hello there', ...GREEDY, '--max-tokens', '24', '--json');
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { answer: string; finish_reason: string; usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number }; digest: string };
  assert.ok(doc.answer.length > 0);
  assert.equal(doc.finish_reason, 'length');
  assert.equal(doc.usage.completion_tokens, 24);
  assert.equal(doc.usage.total_tokens, doc.usage.prompt_tokens + 24);

  // the model is in the fresh store now; extract it and ask node-llama-cpp directly
  const ls = await mpk(fresh, dir, 'ls');
  assert.match(ls.stdout, /team\/tiny/);
  const x = await mpk(fresh, dir, 'extract', remote, join(dir, 'out'));
  assert.equal(x.code, 0, x.stderr);
  const direct = await directChat(lib, join(dir, 'out', 'tiny.gguf'), [{ user: 'Hello there' }], 24);
  assert.equal(doc.answer, direct);

  // streamed to stdout: the same text, then a newline; a second run moves no blob
  const s = await mpk(fresh, dir, 'run', remote, 'Hello there', ...GREEDY, '--max-tokens', '24');
  assert.equal(s.code, 0, s.stderr);
  assert.equal(s.stdout, `${direct}\n`);
  assert.doesNotMatch(s.stderr, /Pulling/);
});

test('mpk run maps the store blob in place and keeps the chat history across turns', async (t) => {
  const lib = await importLlamaCpp(t);
  if (!lib) return;
  const dir = await tempDir(t);
  const a = await tinyStore(dir);
  const c = spawnMpk(t, a.env, ['run', '-i', 'models/tiny:q8', ...GREEDY, '--max-tokens', '12']);
  await c.waitFor(/>>> $/);
  // the mapped file is the store's blob itself: no copy, no extract
  const blob = join(a.env.MPK_HOME!, 'blobs', 'sha256', a.digest.slice('sha256:'.length));
  const maps = (await readFile(`/proc/${c.pid}/maps`, 'utf8')).split('\n').filter((l) => l.endsWith(blob));
  assert.ok(maps.length > 0, `the blob ${blob} is not mapped`);
  assert.ok(maps.every((l) => /^\S+ r--s /.test(l)), `mapped read-only and shared: ${maps.join('\n')}`);

  c.write('Hello there\n');
  await c.waitFor(/>>> [\s\S]*\n\n>>> $/);
  c.write('What next\n');
  await c.waitFor(/>>> [\s\S]*\n\n>>> [\s\S]*\n\n>>> $/);
  c.write('/bye\n');
  assert.equal(await c.exit, 0, c.stderr());
  const [first, second] = c.stdout().split('>>> ').slice(1, 3).map((s) => s.replace(/\n\n$/, ''));
  const direct1 = await directChat(lib, a.gguf, [{ user: 'Hello there' }], 12);
  assert.equal(first, direct1);
  const direct2 = await directChat(lib, a.gguf, [{ user: 'Hello there', model: direct1 }, { user: 'What next' }], 12);
  assert.equal(second, direct2);
});

test('mpk run reads the prompt from a pipe; PROMPT and piped text are joined', async (t) => {
  const lib = await importLlamaCpp(t);
  if (!lib) return;
  const dir = await tempDir(t);
  const a = await tinyStore(dir);
  const c = spawnMpk(t, a.env, ['run', 'models/tiny:q8', ...GREEDY, '--max-tokens', '10']);
  c.write('Hello there');
  c.end();
  assert.equal(await c.exit, 0, c.stderr());
  assert.equal(c.stdout(), `${await directChat(lib, a.gguf, [{ user: 'Hello there' }], 10)}\n`);

  const j = spawnMpk(t, a.env, ['run', 'models/tiny:q8', 'Summarise', ...GREEDY, '--max-tokens', '10']);
  j.write('the cat');
  j.end();
  assert.equal(await j.exit, 0, j.stderr());
  assert.equal(j.stdout(), `${await directChat(lib, a.gguf, [{ user: 'Summarise\n\nthe cat' }], 10)}\n`);
});

test('mpk run: clear errors for what it cannot run', async (t) => {
  const dir = await tempDir(t);
  const env = { MPK_HOME: join(dir, 'store') };
  await makeModelDir(join(dir, 'st'));
  assert.equal((await mpk(env, dir, 'build', '-t', 'models/st:1', join(dir, 'st'))).code, 0);
  const st = await mpk(env, dir, 'run', 'models/st:1', 'hi');
  assert.equal(st.code, 2);
  assert.match(st.stderr, /^mpk: models\/st:1: is a safetensors model; .*llama\.cpp.*GGUF.*Hint: run it with vLLM.*mpk extract models\/st:1 \.\/model/);
  assert.equal(st.stderr.trim().split('\n').length, 1);

  const missing = await mpk(env, dir, 'run', 'models/nothing:1', 'hi');
  assert.equal(missing.code, 3);
  assert.match(missing.stderr, /no such model/);

  const bad = await mpk(env, dir, 'run', 'models/st:1', 'hi', '--temperature', 'warm');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--temperature "warm": not a number/);
});

test('mpk run without the engine installed says what to install, exit 10', async (t) => {
  const dir = await tempDir(t);
  const a = await tinyStore(dir);
  // a loader hook that makes node-llama-cpp unresolvable, as on a machine without it
  const hook = join(dir, 'hide-engine.mjs');
  const resolver = `export async function resolve(s, c, next) { if (s === 'node-llama-cpp' || s.startsWith('node-llama-cpp/')) { const e = new Error("Cannot find package 'node-llama-cpp'"); e.code = 'ERR_MODULE_NOT_FOUND'; throw e; } return next(s, c); }`;
  await writeFile(hook, `import { register } from 'node:module';\nregister('data:text/javascript,' + encodeURIComponent(${JSON.stringify(resolver)}));\n`);
  const c = spawnMpk(t, a.env, ['run', 'models/tiny:q8', 'hi'], ['--import', hook]);
  c.end();
  assert.equal(await c.exit, 10, c.stderr());
  assert.equal(c.stdout(), '');
  assert.match(c.stderr(), /^mpk: running a model needs the llama\.cpp engine \(node-llama-cpp\), which is not installed\. Hint: npm install .*node-llama-cpp@3\.21\.1 @node-llama-cpp\/linux-x64@3\.21\.1/);
  assert.equal(c.stderr().trim().split('\n').length, 1);
});

test('mpk run -i on a pipe answers every line to the end of input; a history past the context forgets its oldest turns', async (t) => {
  const lib = await importLlamaCpp(t);
  if (!lib) return;
  const dir = await tempDir(t);
  const a = await tinyStore(dir);
  const c = spawnMpk(t, a.env, ['run', '-i', 'models/tiny:q8', ...GREEDY, '--ctx-size', '256', '--max-tokens', '60']);
  const question = (i: number) => `question ${i}: ${'tell me about the cat and the dog '.repeat(6)}`;
  for (let i = 1; i <= 4; i++) c.write(`${question(i)}\n`);
  c.end(); // no /bye: the end of input ends the chat once every line is answered
  assert.equal(await c.exit, 0, c.stderr());
  const answers = c.stdout().split('>>> ').slice(1, -1);
  assert.equal(answers.length, 4, c.stdout());
  assert.match(c.stdout(), /\[the 1 oldest turn was forgotten to fit the context\]|\[the \d oldest turns were forgotten to fit the context\]/);
  assert.equal(c.stderr(), '');
});

test('mpk run on a terminal: Ctrl-C stops the answer, not the chat; Ctrl-C at the prompt says how to leave; Ctrl-D leaves', async (t) => {
  const lib = await importLlamaCpp(t);
  if (!lib) return;
  if (!hasCommand('script')) {
    if (process.env.CI === 'true') throw new Error('CI: script (bsdutils) is not installed');
    t.skip('script (bsdutils) is not installed: it gives mpk a terminal');
    return;
  }
  const dir = await tempDir(t);
  const a = await tinyStore(dir);
  // script(1) runs mpk on a pseudo-terminal: its stdin and stdout are a TTY, so the chat is the
  // terminal one (raw mode: Ctrl-C arrives as a key, not as SIGINT to the process)
  const cmd = [process.execPath, '--import', 'tsx', BIN, 'run', 'models/tiny:q8', '--temperature', '0', '--threads', '1', '--ctx-size', '4096', '--max-tokens', '3000'].map((s) => `'${s}'`).join(' ');
  const c = spawnMpkVia(t, 'script', ['-qfec', cmd, '/dev/null'], a.env);
  await c.waitFor(/>>> $/);
  c.write('Hello there\r');
  await c.waitFor(/Hello there\s+\S+/); // the answer has begun
  c.write('\x03');
  await c.waitFor(/\[stopped\]\s*>>> $/);
  c.write('\x03');
  await c.waitFor(/Use Ctrl-D or \/bye to leave\.\s*>>> $/);
  c.write('\x04');
  assert.equal(await c.exit, 0, c.stdout());
});

function spawnMpkVia(t: { after(fn: () => unknown): void }, cmd: string, args: string[], env: NodeJS.ProcessEnv): Child {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let raw = '';
  child.stdout.on('data', (d) => (raw += d));
  child.stderr.on('data', (d) => (raw += d));
  // what the terminal shows, without readline's cursor moves and colours
  let out = '';
  const screen = () => (out = raw.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, ''));
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return {
    pid: child.pid!,
    stdout: () => screen(),
    stderr: () => '',
    write: (s) => void child.stdin.write(s),
    end: () => child.stdin.end(),
    exit,
    async waitFor(re, ms = 30_000) {
      const deadline = Date.now() + ms;
      while (!re.test(screen())) {
        if (child.exitCode !== null) throw new Error(`exited (${child.exitCode}) before ${re}: ${JSON.stringify(out)}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${re}: ${JSON.stringify(out)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

test('mpk run from an index of variants: --variant picks one, --memory chooses the best that fits, saying why', async (t) => {
  const lib = await importLlamaCpp(t);
  if (!lib) return;
  const dir = await tempDir(t);
  const env = { MPK_HOME: join(dir, 'a'), DOCKER_CONFIG: join(dir, 'docker') };
  const digests: Record<string, string> = {};
  for (const type of ['F16', 'Q8_0'] as const) {
    const gguf = join(dir, type, 'tiny.gguf');
    await writeTree(dir, { [`${type}/.keep`]: '' });
    await writeTinyLlama(gguf, { fileType: type });
    assert.equal((await mpk(env, dir, 'build', '-t', `m/tiny:${type.toLowerCase()}`, gguf)).code, 0);
    digests[type] = (JSON.parse((await mpk(env, dir, 'inspect', '--json', `m/tiny:${type.toLowerCase()}`)).stdout) as { digest: string }).digest;
  }
  const made = await mpk(env, dir, 'index', 'create', 'm/tiny:all', 'm/tiny:f16', 'm/tiny:q8_0');
  assert.equal(made.code, 0, made.stderr);
  const server = await startTestServer(t);
  assert.equal((await mpk(env, dir, 'push', '-q', 'm/tiny:all', `${server.host}/m/tiny:all`)).code, 0);

  const picked = await mpk({ ...env, MPK_HOME: join(dir, 'b') }, dir, 'run', `${server.host}/m/tiny:all`, 'Hello there', '--variant', 'Q8_0', ...GREEDY, '--max-tokens', '4', '--json');
  assert.equal(picked.code, 0, picked.stderr);
  assert.equal((JSON.parse(picked.stdout) as { digest: string }).digest, digests.Q8_0);

  const chosen = await mpk({ ...env, MPK_HOME: join(dir, 'c') }, dir, 'run', `${server.host}/m/tiny:all`, 'Hello there', '--memory', '300KiB', ...GREEDY, '--max-tokens', '4', '--json');
  assert.equal(chosen.code, 0, chosen.stderr);
  assert.equal((JSON.parse(chosen.stdout) as { digest: string }).digest, digests.Q8_0);
  assert.match(chosen.stderr, /chose Q8_0 .*F16 needs/);
});
