/**
 * --json on every command that prints a result (tag, rm, modelfile had none), and errors as one
 * JSON line on stderr when --json is given: `{"error":{"code","message","hint","exit"}}`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mpk } from '../test-support/cli.js';
import { makeModelDir, tempDir, writeTree } from '../test-support/tmp.js';

interface JsonError {
  error: { code: string; message: string; hint?: string; exit: number; file?: string; line?: number; column?: number };
}

/** stderr is exactly one line of JSON; its exit is the process's. */
function jsonError(r: { code: number; stdout: string; stderr: string }): JsonError['error'] {
  assert.equal(r.stdout, '', 'stdout keeps results only');
  assert.equal(r.stderr.endsWith('\n') && r.stderr.indexOf('\n'), r.stderr.length - 1, `one line: ${r.stderr}`);
  const e = (JSON.parse(r.stderr) as JsonError).error;
  assert.equal(e.exit, r.code);
  return e;
}

test('tag, rm and modelfile generate print their result as JSON with --json', async (t) => {
  const dir = await tempDir(t);
  const env = { MPK_HOME: join(dir, 'store') };
  await makeModelDir(join(dir, 'm'));
  const built = JSON.parse((await mpk(env, dir, 'build', '--json', '-t', 'models/demo:v1', 'm')).stdout) as { digest: string };

  const tag = await mpk(env, dir, 'tag', 'models/demo:v1', 'models/demo:latest', '--json');
  assert.equal(tag.code, 0, tag.stderr);
  assert.deepEqual(JSON.parse(tag.stdout), { source: 'models/demo:v1', target: 'models/demo:latest', digest: built.digest });
  assert.equal((await mpk(env, dir, 'tag', 'models/demo:v1', 'models/demo:2')).stdout, '', 'silent without --json, as docker tag');

  const rm = await mpk(env, dir, 'rm', '--json', 'models/demo:latest', 'models/demo:2');
  assert.equal(rm.code, 0, rm.stderr);
  assert.deepEqual(JSON.parse(rm.stdout), { untagged: ['models/demo:latest', 'models/demo:2'] });
  // a later reference that fails: what was removed is still said, and the error is JSON
  const partial = await mpk(env, dir, 'rm', '--json', 'models/demo:v1', 'models/nothing:1');
  assert.equal(partial.code, 3);
  assert.deepEqual(JSON.parse(partial.stdout), { untagged: ['models/demo:v1'] });
  assert.equal((JSON.parse(partial.stderr) as JsonError).error.code, 'NOT_FOUND');

  const gen = await mpk(env, dir, 'modelfile', 'generate', 'm', '--json');
  assert.equal(gen.code, 0, gen.stderr);
  const g = JSON.parse(gen.stdout) as { modelfile: string; output: string | null; warnings: string[] };
  assert.match(g.modelfile, /\nMODEL model\.safetensors\n/);
  assert.equal(g.output, null);
  const toFile = JSON.parse((await mpk(env, dir, 'modelfile', 'generate', 'm', '-o', 'Modelfile.out', '--json')).stdout) as typeof g;
  assert.equal(toFile.output, join(dir, 'Modelfile.out'));
  assert.equal(await readFile(join(dir, 'Modelfile.out'), 'utf8'), toFile.modelfile);
});

test('with --json an error is one JSON line on stderr with code, message, hint and exit; stdout stays empty', async (t) => {
  const dir = await tempDir(t);
  const env = { MPK_HOME: join(dir, 'store') };
  await mpk(env, dir, 'ls'); // the store exists: its creation notice is not part of what is checked
  const nf = jsonError(await mpk(env, dir, 'inspect', 'models/none:1', '--json'));
  assert.equal(nf.code, 'NOT_FOUND');
  assert.equal(nf.exit, 3);
  assert.match(nf.message, /^models\/none:1: no such model/);
  assert.match(nf.hint ?? '', /mpk ls/);
  assert.deepEqual(Object.keys(nf), ['code', 'message', 'hint', 'exit']);

  // errors before the command runs: a bad flag, a mistyped command, a command without --json
  const flag = jsonError(await mpk(env, dir, 'ls', '--json', '--nope'));
  assert.deepEqual([flag.code, flag.exit, flag.message], ['USAGE', 2, "ls: unknown option '--nope'"]);
  const cmd = jsonError(await mpk(env, dir, 'biuld', '--json'));
  assert.deepEqual([cmd.code, cmd.message, cmd.hint], ['USAGE', 'unknown command "biuld"', 'did you mean build?']);
  assert.equal(jsonError(await mpk(env, dir, 'completion', 'bash', '--json')).code, 'USAGE');

  // a Modelfile error keeps its position
  await writeTree(dir, { 'm/a.bin': 'x', 'm/Modelfile': 'NAME x\nMODLE a.bin\n' });
  const mf = jsonError(await mpk(env, dir, 'build', '--json', '-t', 'x:1', 'm'));
  assert.deepEqual([mf.code, mf.exit, mf.file, mf.line, mf.column], ['MODELFILE_SYNTAX', 2, 'Modelfile', 2, 1]);

  // `--json` after `--` is an argument, not the flag: the error is text
  const after = await mpk(env, dir, 'inspect', '--', '--json');
  assert.match(after.stderr, /^mpk: /);
  // and without --json errors stay one line of text
  assert.match((await mpk(env, dir, 'inspect', 'models/none:1')).stderr, /^mpk: models\/none:1: no such model.*\. Hint: /);
});

test('--json --version and version --json', async () => {
  const { VERSION } = await import('../version.js');
  assert.deepEqual(JSON.parse((await mpk({}, '/', '--version', '--json')).stdout), { version: VERSION });
  assert.deepEqual(JSON.parse((await mpk({}, '/', 'version', '--json')).stdout), { version: VERSION });
});
