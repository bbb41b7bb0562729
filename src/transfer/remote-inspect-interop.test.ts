/**
 * Metadata before bytes against docker-registry 2.8 (remote-inspect.test.ts does the same against
 * `mpk serve`): an index of three GGUF variants made with `mpk index create`, pushed, inspected
 * remotely through a counting pass-through proxy (no weight asked for; bytes fetched ≪ the
 * model), `pull --dry-run`, then pulled by each selection rule: --variant, --platform, --memory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { mpk } from '../test-support/cli.js';
import { startFaultProxy } from '../test-support/fault-proxy.js';
import { fileRegistry } from '../test-support/registry-peer.js';
import { writeTinyLlama } from '../test-support/tiny-llama.js';
import { tempDir } from '../test-support/tmp.js';

const registry = fileRegistry();

test('docker-registry: an index of three GGUF variants inspected remotely (no weight fetched), dry run, pulled by --variant, --platform and --memory', async (t) => {
  const reg = await registry(t);
  if (!reg) return;
  const proxy = await startFaultProxy(t, reg.url);
  const dir = await tempDir(t);
  const env = { MPK_HOME: join(dir, 'store'), DOCKER_CONFIG: join(dir, 'docker') };
  const ok = async (e: NodeJS.ProcessEnv, ...argv: string[]) => {
    const r = await mpk(e, dir, ...argv);
    assert.equal(r.code, 0, `${argv.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const digests: Record<string, string> = {};
  const weights = new Set<string>();
  for (const ft of ['F32', 'F16', 'Q8_0'] as const) {
    await writeTinyLlama(join(dir, `tiny-${ft}.gguf`), { fileType: ft });
    await ok(env, 'build', '-q', '-t', `m/tiny:${ft.toLowerCase()}`, `tiny-${ft}.gguf`);
    const local = JSON.parse(await ok(env, 'inspect', '--json', `m/tiny:${ft.toLowerCase()}`));
    digests[ft] = local.digest;
    for (const f of local.files) if (f.kind === 'weight') weights.add(f.digest);
  }
  await ok(env, 'index', 'create', 'm/tiny:all', 'm/tiny:f32', 'm/tiny:f16', 'm/tiny:q8_0,platform=linux/arm64');
  const ref = `${proxy.host}/team/tiny:all`;
  await ok(env, 'push', '-q', 'm/tiny:all', ref);

  // inspect: the index, each variant's manifest and config; never a weight
  proxy.log.length = 0;
  const r = JSON.parse(await ok(env, 'inspect', '--json', ref));
  const served = proxy.log.splice(0);
  assert.equal(r.kind, 'index');
  assert.deepEqual(r.variantDetails.map((v: { digest: string }) => v.digest), [digests.F32, digests.F16, digests.Q8_0]);
  assert.deepEqual(r.variantDetails.map((v: { ggufMetadata: Record<string, unknown> }) => v.ggufMetadata['general.architecture']), ['llama', 'llama', 'llama']);
  assert.deepEqual(r.variants.map((v: { quantization: string }) => v.quantization), ['F32', 'F16', 'Q8_0']);
  assert.ok(!served.some((e) => [...weights].some((w) => e.url.includes(w))), `no weight fetched: ${served.map((e) => e.url).join(' ')}`);
  const wire = served.reduce((n, e) => n + e.bodyBytesSent, 0);
  assert.equal(r.fetchedBytes, wire, 'what mpk counts is what the registry sent');
  assert.ok(wire < r.modelBytes / 50, `${wire} bytes fetched for ${r.modelBytes}`);
  t.diagnostic(`docker-registry inspect of a 3-variant index: ${wire} bytes fetched in ${served.length} requests; the variants hold ${r.modelBytes} bytes (${(r.modelBytes / wire).toFixed(0)}x)`);
  assert.match(await ok(env, 'inspect', ref), /── Variant 3 of 3: linux\/arm64 [\s\S]*\nfetched \d+\.\d KiB of metadata; the index and its 3 variants hold 1\.\d MiB\n$/);

  // dry run: manifests only, nothing written
  const fresh = { ...env, MPK_HOME: join(dir, 'dry') };
  await ok(fresh, 'ls');
  const before = await readdir(join(fresh.MPK_HOME, 'blobs', 'sha256'));
  const plan = JSON.parse(await ok(fresh, 'pull', '--dry-run', '--json', ref, '--variant', 'F16'));
  assert.equal(plan.root.digest, digests.F16);
  assert.deepEqual(plan.entries.map((e: { kind: string; action: string }) => `${e.kind} ${e.action}`), ['manifest fetch', 'config fetch', 'weight fetch']);
  assert.deepEqual(await readdir(join(fresh.MPK_HOME, 'blobs', 'sha256')), before);

  // pull by each rule, each into a fresh store
  const pulled = async (name: string, ...flags: string[]) => {
    const e = { ...env, MPK_HOME: join(dir, name) };
    const r = await mpk(e, dir, 'pull', '-q', ref, ...flags);
    assert.equal(r.code, 0, `${flags.join(' ')}: ${r.stderr}`);
    return { digest: JSON.parse(await ok(e, 'inspect', '--json', ref)).digest as string, said: r.stderr };
  };
  assert.equal((await pulled('v', '--variant', 'F16')).digest, digests.F16);
  assert.equal((await pulled('vk', '--variant', 'org.cncf.model.quantization=F32')).digest, digests.F32);
  assert.equal((await pulled('p', '--platform', 'linux/arm64')).digest, digests.Q8_0);
  const m1 = await pulled('m1', '--memory', '1MiB');
  assert.equal(m1.digest, digests.F32);
  assert.match(m1.said, /chose F32 \(663\.2 KiB of weights; 1\.0 MiB available\)/);
  const m2 = await pulled('m2', '--memory', '600KiB');
  assert.equal(m2.digest, digests.F16);
  assert.match(m2.said, /chose F16 .*F32 needs/);
  const small = await mpk({ ...env, MPK_HOME: join(dir, 'small') }, dir, 'pull', ref, '--memory', '100KiB');
  assert.equal(small.code, 2, small.stderr);
  assert.match(small.stderr, /no variant fits 100\.0 KiB available/);
});
