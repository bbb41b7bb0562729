/**
 * `mpk completion bash|zsh|fish`: scripts generated from the command table and each command's
 * options. bash is run for real (bash -n, `complete -p mpk`, completions of typed lines with a
 * stand-in `mpk` on PATH for the model names); zsh and fish are syntax-checked (and fish run) when
 * installed, else their content is checked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { COMMANDS } from './commands-table.js';
import { mpk } from '../test-support/cli.js';
import { hasCommand } from '../test-support/peers.js';
import { tempDir } from '../test-support/tmp.js';

const REFS = ['models/demo:v1', 'models/demo:latest', 'other/x:1'];

/** A directory with the script and an `mpk` on PATH that lists REFS and records how it was called. */
async function setup(t: { after(fn: () => unknown): void }, shell: string): Promise<{ dir: string; script: string; env: NodeJS.ProcessEnv }> {
  const dir = await tempDir(t);
  const r = await mpk({}, dir, 'completion', shell);
  assert.equal(r.code, 0, r.stderr);
  const script = join(dir, `mpk.${shell}`);
  await writeFile(script, r.stdout);
  await writeFile(join(dir, 'mpk'), `#!/bin/sh\necho "$*" >> '${dir}/calls'\nprintf '%s\\n' ${REFS.join(' ')}\n`);
  await chmod(join(dir, 'mpk'), 0o755);
  return { dir, script, env: { PATH: `${dir}:${process.env.PATH}`, HOME: dir } };
}

function sh(cmd: string, args: string[], env: NodeJS.ProcessEnv): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { env, encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('bash: the script parses, `complete -p mpk` shows it registered, and typed lines complete', async (t) => {
  const { script, env, dir } = await setup(t, 'bash');
  assert.equal(sh('bash', ['-n', script], env).status, 0);
  const reg = sh('bash', ['-c', `source '${script}' && complete -p mpk`], env);
  assert.equal(reg.status, 0, reg.stderr);
  assert.equal(reg.stdout, 'complete -o default -F _mpk mpk\n');

  const lines: Record<string, string> = {
    'mpk bu': 'build',
    'mpk --st': '--store',
    'mpk build --t': '--tag',
    'mpk build -t x:1 --group': '--group-small-files',
    'mpk convert a:1 --format ': 'docker modelpack',
    'mpk extract a:1 out --type we': 'weight',
    'mpk modelfile ': 'generate',
    'mpk completion ': 'bash zsh fish',
    'mpk inspect mod': 'models/demo:v1 models/demo:latest',
    'mpk inspect models/demo:l': 'latest', // bash replaces what follows the ':'
    'mpk tag models/demo:v1 ': '', // the new name: nothing offered (file names by default)
    'mpk export ollama ': REFS.join(' '),
    'mpk --store /s rm ': REFS.join(' '),
    'mpk build -t ': '', // an option's value: file names by default
  };
  const body = Object.keys(lines)
    .map((l) => `COMP_LINE='${l}'; COMP_POINT=${l.length}; _mpk; echo "\${COMPREPLY[*]}"`)
    .join('\n');
  const r = sh('bash', ['-c', `source '${script}'\n${body}`], env);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.stdout.split('\n').slice(0, -1), Object.values(lines));
  const { readFile } = await import('node:fs/promises');
  assert.match(await readFile(join(dir, 'calls'), 'utf8'), /^--store \/s ls -q$/m, 'model names come from `mpk ls -q` of the given store');
});

test('every command and every option of the table is in each script', async () => {
  for (const shell of ['bash', 'zsh', 'fish']) {
    const { stdout } = await mpk({}, '/', 'completion', shell);
    for (const [name, entry] of Object.entries(COMMANDS)) {
      assert.ok(stdout.includes(name), `${shell}: ${name}`);
      const spec = await entry.load();
      for (const opt of Object.keys(spec.options)) {
        const re = shell === 'fish' ? new RegExp(`-n '__mpk_command_is ${name}'.* -l ${opt}\\b`) : new RegExp(`--${opt}\\b`);
        assert.match(stdout, re, `${shell}: ${name} --${opt}`);
      }
    }
  }
  const bad = await mpk({}, '/', 'completion', 'powershell');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^mpk: completion: unknown shell "powershell"\. Hint: use one of bash, zsh, fish/);
});

test('zsh: the script parses and registers _mpk with compinit (when zsh is installed)', async (t) => {
  const { script, env, dir } = await setup(t, 'zsh');
  const text = (await mpk({}, '/', 'completion', 'zsh')).stdout;
  assert.match(text, /^#compdef mpk\n/);
  assert.match(text, /compdef _mpk mpk/);
  assert.match(text, /'\(-t --tag\)'\{-t,--tag\}'\[name of the model \(required\), e\.g\. models\/llama3\\:8b\]:tag:_files'/);
  assert.match(text, / --format'\[docker or modelpack \(required\)\]:format:\(docker modelpack\)' /);
  if (!hasCommand('zsh')) return t.diagnostic('zsh is not installed: content checked only');
  assert.equal(sh('zsh', ['-n', script], env).status, 0);
  const r = sh('zsh', ['-c', `autoload -U compinit && compinit -u -d '${dir}/zcompdump' && source '${script}' && print -r -- $_comps[mpk]`], env);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, '_mpk\n');
});

test('fish: the script parses and `complete -C` completes commands, options, choices and models (when fish is installed)', async (t) => {
  const { script, env } = await setup(t, 'fish');
  const text = (await mpk({}, '/', 'completion', 'fish')).stdout;
  assert.match(text, /complete -c mpk -n 'not __mpk_command' -f -a build -d 'Build a model/);
  assert.match(text, /complete -c mpk -n '__mpk_command_is convert' -l format -x -a 'docker modelpack'/);
  if (!hasCommand('fish')) return t.diagnostic('fish is not installed: content checked only');
  assert.equal(sh('fish', ['-n', script], env).status, 0);
  const ask = (line: string) => {
    const r = sh('fish', ['-c', `source '${script}'; complete -C'${line}'`], env);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    return r.stdout.split('\n').filter(Boolean).map((l) => l.split('\t')[0]);
  };
  assert.deepEqual(ask('mpk bu'), ['build']);
  assert.ok(ask('mpk build --t').includes('--tag'));
  assert.deepEqual(ask('mpk convert a:1 --format '), ['docker', 'modelpack']);
  assert.deepEqual(ask('mpk modelfile '), ['generate']);
  assert.deepEqual(ask('mpk inspect models/').sort(), ['models/demo:latest', 'models/demo:v1']);
});
