/**
 * `$MPK_HOME/mirrors.json`: `mpk pull` asks the site cache (an `mpk serve --proxy` of the upstream)
 * first, stores the model under the upstream's name, and falls back to the upstream when the
 * mirror fails. The upstream is a real docker-registry; the file is checked before use.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mpk } from '../test-support/cli.js';
import { requirePeer } from '../test-support/peers.js';
import { startDockerRegistry } from '../test-support/registry-peer.js';
import { poolHexes, startTestServer } from '../test-support/serve.js';
import { makeModelDir, tempDir, writeTree } from '../test-support/tmp.js';
import { rejectsWith } from '../test-support/rejects-with.js';
import { loadMirrors } from './mirrors.js';

test('mirrors.json: absent is none; a host maps to a list of http(s) URLs; anything else is a usage error naming the file', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'mirrors.json');
  assert.deepEqual(await loadMirrors(file), {});
  await writeFile(file, JSON.stringify({ mirrors: { 'registry.example.com': ['http://cache:5000/', 'https://c2'] } }));
  assert.deepEqual(await loadMirrors(file), { 'registry.example.com': ['http://cache:5000', 'https://c2'] });
  for (const bad of ['{', '{"mirrors": []}', '{"mirrors": {"a/b": []}}', '{"mirrors": {"h": ["ftp://x"]}}', '{"mirrors": {"h": ["http://x/path"]}}']) {
    await writeFile(file, bad);
    await rejectsWith(loadMirrors(file), 'USAGE', file);
  }
});

test('mpk pull asks the mirror first (a pull-through cache fills), stores under the upstream name; a dead mirror falls back to the upstream with a warning', async (t) => {
  if (!requirePeer(t, 'docker-registry')) return;
  const reg = await startDockerRegistry(null);
  t.after(() => reg.stop());
  const dir = await tempDir(t);
  const pusher = { MPK_HOME: join(dir, 'pusher') };
  await writeTree(join(dir, 'model'), await makeModelDir(join(dir, 'model')));
  const ok = async (p: Promise<{ code: number; stdout: string; stderr: string }>): Promise<string> => {
    const r = await p;
    assert.equal(r.code, 0, r.stderr);
    return r.stdout + r.stderr;
  };
  await ok(mpk(pusher, dir, 'build', '-t', 'local/m:1', join(dir, 'model')));
  const ref = `${reg.host}/team/m:1`;
  await ok(mpk(pusher, dir, 'push', 'local/m:1', ref, '-q'));

  const cache = await startTestServer(t, { proxy: reg.url });
  const home = join(dir, 'puller');
  await mkdir(home, { recursive: true });
  await writeFile(join(home, 'mirrors.json'), JSON.stringify({ mirrors: { [reg.host]: [cache.url] } }));
  await ok(mpk({ MPK_HOME: home }, dir, 'pull', ref, '-q'));
  assert.ok((await poolHexes(cache)).length >= 3, 'the blobs came through the cache, which kept them');
  assert.match(await ok(mpk({ MPK_HOME: home }, dir, 'ls')), new RegExp(`^${reg.host}/team/m:1 `, 'm'), 'stored under the upstream name');

  const home2 = join(dir, 'puller2');
  await mkdir(home2, { recursive: true });
  await writeFile(join(home2, 'mirrors.json'), JSON.stringify({ mirrors: { [reg.host]: ['http://127.0.0.1:9'] } }));
  const out = await ok(mpk({ MPK_HOME: home2 }, dir, 'pull', ref, '-q', '--stall-timeout', '2'));
  assert.match(out, /mpk: warning: mirror http:\/\/127\.0\.0\.1:9 failed \(.+\); trying the next, then the registry itself/);
  assert.match(await ok(mpk({ MPK_HOME: home2 }, dir, 'ls')), new RegExp(`^${reg.host}/team/m:1 `, 'm'));
});
