/**
 * mpk as a real process whose reader leaves (`mpk inspect REF | head -2`): no EPIPE stack trace,
 * nothing on stderr, exit 141 as a shell reports for ls or git; a pull whose output is gone stops
 * and a later pull completes.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { buildModel } from '../build/build-model.js';
import { pushModel } from '../transfer/transfer.js';
import { LocalStore } from '../store/store.js';
import { mpkProcess } from '../test-support/peers.js';
import { startTestServer } from '../test-support/serve.js';
import { makeModelDir, tempDir } from '../test-support/tmp.js';
import { EXIT_PIPE } from './main.js';

const BIN = new URL('../test-support/mpk-bin.ts', import.meta.url).pathname;

/** Runs mpk with its stdout a pipe whose reading end is closed before mpk writes (the reader left). */
function mpkReaderGone(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout.destroy(); // our end of the pipe is closed: mpk's first write meets EPIPE
    let stderr = '';
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}

async function storeWithModel(t: TestContext): Promise<string> {
  const dir = await tempDir(t);
  await makeModelDir(dir, 'p');
  const root = await tempDir(t);
  const store = await LocalStore.open(root);
  await buildModel(store, { contextDir: dir, reference: 'local/p:1' });
  store.close();
  return root;
}

test('a closed stdout ends inspect and ls quietly: exit 141, nothing on stderr', async (t) => {
  const root = await storeWithModel(t);
  for (const args of [['inspect', 'local/p:1'], ['ls'], ['inspect', '--json', 'local/p:1']]) {
    const r = await mpkReaderGone(args, { MPK_HOME: root });
    assert.equal(r.stderr, '', `${args.join(' ')}: nothing on stderr`);
    assert.equal(r.code, EXIT_PIPE, `${args.join(' ')}: exit ${r.code} (${r.signal})`);
  }
});

test('pull --json whose reader left stops quietly (exit 141); the next pull completes', async (t) => {
  const s = await startTestServer(t);
  const root = await storeWithModel(t);
  const store = await LocalStore.open(root);
  await pushModel(store, 'local/p:1', `${s.host}/pipe/p:1`);
  store.close();
  const env = { MPK_HOME: await tempDir(t), DOCKER_CONFIG: await tempDir(t) };
  (await LocalStore.open(env.MPK_HOME)).close(); // an existing (empty) store: nothing to announce
  const r = await mpkReaderGone(['pull', '--json', `${s.host}/pipe/p:1`], env);
  assert.equal(r.stderr, '', 'nothing on stderr');
  assert.equal(r.code, EXIT_PIPE);
  const again = await mpkProcess(['pull', '-q', `${s.host}/pipe/p:1`], env);
  assert.equal(again.code, 0, again.stderr);
});
