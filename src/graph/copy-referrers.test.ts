/**
 * `--referrers` on push, pull and copy (issue 13): an SBOM and an eval file attached to a model,
 * a signature attached to the SBOM; carried store → mpk serve (referrers API) → docker-registry
 * 2.8 (the sha256-<hex> tag schema) → mpk serve → store, the tree checked at each end with
 * `mpk referrers`; none without the flag. Indexes (referrers of the index and of its variants),
 * and the refusals: a cycle, a listed referrer of another subject, a chain deeper than 8 — an
 * error and nothing stored.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mpk } from '../test-support/cli.js';
import { fileRegistry } from '../test-support/registry-peer.js';
import { OCI_INDEX, request, sha256, startTestServer } from '../test-support/serve.js';
import { writeTinyLlama } from '../test-support/tiny-llama.js';
import { makeModelDir, tempDir, writeTree } from '../test-support/tmp.js';

const registry = fileRegistry();
const SBOM = 'application/spdx+json';
const EVAL = 'application/vnd.mpk.eval+json';
const SIG = 'application/vnd.example.signature';

interface Fx {
  env: NodeJS.ProcessEnv;
  dir: string;
}

async function fixture(t: TestContext, name = 'store'): Promise<Fx> {
  const dir = await tempDir(t);
  const env = { MPK_HOME: join(dir, name), DOCKER_CONFIG: join(dir, 'docker') };
  await writeTree(dir, {
    'sbom.spdx.json': JSON.stringify({ spdxVersion: 'SPDX-2.3', name: 'model' }),
    'eval.json': JSON.stringify({ mmlu: 0.61 }),
    'sig.bin': Buffer.from([1, 2, 3, 4]),
  });
  return { env, dir };
}

async function ok(f: Fx, ...argv: string[]): Promise<string> {
  const r = await mpk(f.env, f.dir, ...argv);
  assert.equal(r.code, 0, `${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

interface Node {
  digest: string;
  artifactType?: string;
  referrers: Node[];
}

/** The referrers tree of REF as nested [artifactType, digest, children]. */
async function tree(f: Fx, ref: string): Promise<unknown> {
  const t = JSON.parse(await ok(f, 'referrers', ref, '--json')) as { digest: string; referrers: Node[] };
  const shape = (ns: Node[]): unknown[] => ns.map((n) => [n.artifactType, n.digest, shape(n.referrers)]);
  return { digest: t.digest, referrers: shape(t.referrers) };
}

/** A model with an SBOM and an eval result attached, and a signature on the SBOM. */
async function modelWithReferrers(f: Fx, ref: string): Promise<void> {
  await makeModelDir(join(f.dir, 'model'));
  await ok(f, 'build', '-t', ref, 'model', '-q');
  const sbom = (await ok(f, 'attach', ref, '--type', SBOM, 'sbom.spdx.json')).trim();
  await ok(f, 'attach', ref, '--type', EVAL, 'eval.json');
  await ok(f, 'attach', sbom, '--type', SIG, 'sig.bin');
}

test('--referrers: store → mpk serve → docker-registry → mpk serve → store keeps the same tree; without it none go', async (t) => {
  const reg = await registry(t);
  if (!reg) return;
  const s = await startTestServer(t);
  const f = await fixture(t);
  await modelWithReferrers(f, 'local/m:1');
  const want = await tree(f, 'local/m:1');
  assert.equal((want as { referrers: unknown[] }).referrers.length, 2);

  // store → mpk serve (referrers API)
  const pushed = JSON.parse((await ok(f, 'push', 'local/m:1', `${s.host}/r/m:1`, '--referrers', '--json')).trimEnd().split('\n').at(-1)!);
  assert.equal(pushed.referrers, 3);
  assert.deepEqual(await tree(f, `${s.host}/r/m:1`), want);
  // mpk serve → docker-registry (no API: the tag schema)
  assert.match(await ok(f, 'copy', `${s.host}/r/m:1`, `${reg.host}/r/m:1`, '--referrers'), /; 3 referrers\) in/);
  assert.deepEqual(await tree(f, `${reg.host}/r/m:1`), want);
  const tags = (await request(`${reg.url}/v2/r/m/tags/list`)).json<{ tags: string[] }>().tags;
  assert.equal(tags.filter((x) => x.startsWith('sha256-')).length, 2, 'a fallback tag for the model and one for the SBOM');
  // A fallback tag rewritten without its entries (by another tool): the referrers are there but not
  // listed; a copy lists them again.
  const modelDigest = (want as { digest: string }).digest;
  const emptied = await request(`${reg.url}/v2/r/m/manifests/sha256-${modelDigest.slice(7)}`, {
    method: 'PUT',
    headers: { 'content-type': OCI_INDEX },
    body: JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }),
  });
  assert.equal(emptied.status, 201, emptied.text);
  assert.deepEqual((await tree(f, `${reg.host}/r/m:1`) as { referrers: unknown[] }).referrers, []);
  await ok(f, 'copy', `${s.host}/r/m:1`, `${reg.host}/r/m:1`, '--referrers', '-q');
  assert.deepEqual(await tree(f, `${reg.host}/r/m:1`), want);
  // docker-registry → mpk serve, and → a fresh store
  await ok(f, 'copy', `${reg.host}/r/m:1`, `${s.host}/back/m:1`, '--referrers', '-q');
  assert.deepEqual(await tree(f, `${s.host}/back/m:1`), want);
  const g = await fixture(t, 'store2');
  const plan = JSON.parse(await ok(g, 'pull', '--dry-run', `${reg.host}/r/m:1`, '--referrers', '--json'));
  assert.equal(plan.referrers, 3);
  assert.equal(plan.entries.filter((e: { kind: string }) => e.kind === 'referrer').length, 3);
  assert.ok(plan.entries.some((e: { path?: string }) => e.path === 'sig.bin'), 'the referrers\' files are listed');
  assert.match(await ok(g, 'pull', '--dry-run', `${reg.host}/r/m:1`, '--referrers'), /; 3 referrers with it; dry run/);
  await ok(g, 'pull', `${reg.host}/r/m:1`, '--referrers', '-q');
  const digest = modelDigest;
  assert.deepEqual(await tree(g, digest), want, 'in the store (a bare digest names a stored manifest)');
  // again: nothing moves, every referrer is already there
  const again = JSON.parse((await ok(g, 'pull', `${reg.host}/r/m:1`, '--referrers', '--json')).trimEnd().split('\n').at(-1)!);
  assert.equal(again.transferred, 0, JSON.stringify(again));

  // Without the flag, no referrer goes along (either kind of registry, or the store).
  await ok(f, 'push', 'local/m:1', `${s.host}/plain/m:1`, '-q');
  await ok(f, 'copy', `${s.host}/r/m:1`, `${reg.host}/plain/m:1`, '-q');
  const h = await fixture(t, 'store3');
  await ok(h, 'pull', `${reg.host}/r/m:1`, '-q');
  for (const ref of [`${s.host}/plain/m:1`, `${reg.host}/plain/m:1`, digest]) {
    assert.deepEqual((await tree(ref === digest ? h : f, ref) as { referrers: unknown[] }).referrers, [], ref);
  }
  const index = JSON.parse(await readFile(join(h.env.MPK_HOME!, 'index.json'), 'utf8'));
  assert.equal(index.manifests.length, 1, 'only the model');
});

test('--referrers with an index: the index\'s referrers and each variant\'s; a pull of one variant takes that variant\'s', async (t) => {
  const s = await startTestServer(t);
  const f = await fixture(t);
  for (const ft of ['F16', 'Q8_0'] as const) {
    await writeTinyLlama(join(f.dir, `tiny-${ft}.gguf`), { fileType: ft });
    await ok(f, 'build', '-t', `m/tiny:${ft.toLowerCase()}`, `tiny-${ft}.gguf`, '-q');
  }
  await ok(f, 'index', 'create', 'm/tiny:all', 'm/tiny:f16', 'm/tiny:q8_0');
  await ok(f, 'attach', 'm/tiny:all', '--type', SBOM, 'sbom.spdx.json');
  await ok(f, 'attach', 'm/tiny:q8_0', '--type', EVAL, 'eval.json');
  await ok(f, 'push', 'm/tiny:all', `${s.host}/i/tiny:all`, '--referrers', '-q');
  assert.deepEqual(await tree(f, `${s.host}/i/tiny:all`), await tree(f, 'm/tiny:all'));
  const q8 = JSON.parse(await ok(f, 'inspect', 'm/tiny:q8_0', '--json')).digest as string;
  const evalTree = await tree(f, `${s.host}/i/tiny@${q8}`);
  assert.deepEqual(evalTree, await tree(f, 'm/tiny:q8_0'));
  assert.equal((evalTree as { referrers: unknown[] }).referrers.length, 1);

  const g = await fixture(t, 'store2');
  await ok(g, 'pull', `${s.host}/i/tiny:all`, '--variant', 'Q8_0', '--referrers', '-q');
  assert.equal(JSON.parse(await ok(g, 'inspect', `${s.host}/i/tiny:all`, '--json')).digest, q8);
  const pulled = (await tree(g, q8)) as { digest: string; referrers: [string, string, unknown[]][] };
  assert.deepEqual(pulled.referrers.map((r) => r[0]), [EVAL], 'the variant\'s eval, not the index\'s SBOM');
});

test('--referrers refuses a cycle, a referrer of another subject and a chain deeper than 8: an error, nothing stored', async (t) => {
  const reg = await registry(t);
  if (!reg) return;
  const s = await startTestServer(t);
  const f = await fixture(t);
  await makeModelDir(join(f.dir, 'model'));
  await ok(f, 'build', '-t', 'local/m:1', 'model', '-q');
  await ok(f, 'build', '-t', 'local/n:1', 'model', '-q', '--created', '2026-01-01T00:00:00Z');
  const sbom = (await ok(f, 'attach', 'local/m:1', '--type', SBOM, 'sbom.spdx.json')).trim();
  await ok(f, 'push', 'local/m:1', `${reg.host}/bad/m:1`, '--referrers', '-q');
  await ok(f, 'push', 'local/n:1', `${reg.host}/bad/m:n`, '-q');
  const desc = async (digest: string) => ({
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest,
    size: (await readFile(join(f.env.MPK_HOME!, 'blobs', 'sha256', digest.slice(7)))).length,
  });
  const m = await desc(JSON.parse(await ok(f, 'inspect', 'local/m:1', '--json')).digest);
  const n = await desc(JSON.parse(await ok(f, 'inspect', 'local/n:1', '--json')).digest);
  const putFallback = async (subject: string, entries: { mediaType: string; digest: string; size: number }[]) => {
    const body = JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: entries });
    const r = await request(`${reg.url}/v2/bad/m/manifests/sha256-${subject.slice(7)}`, { method: 'PUT', headers: { 'content-type': OCI_INDEX }, body });
    assert.equal(r.status, 201, r.text);
  };

  // The model's fallback tag lists the model itself: a cycle.
  await putFallback(m.digest, [m]);
  const g = await fixture(t, 'store2');
  const cycle = await mpk(g.env, g.dir, 'pull', `${reg.host}/bad/m:1`, '--referrers');
  assert.equal(cycle.code, 4, cycle.stderr);
  assert.match(cycle.stderr, /a cycle through referrers.*Hint: nothing was stored/);
  assert.equal((await mpk(g.env, g.dir, 'ls', '-q')).stdout, '');

  // n's fallback tag lists the SBOM of m.
  await putFallback(n.digest, [await desc(sbom)]);
  const wrong = await mpk(g.env, g.dir, 'copy', `${reg.host}/bad/m:n`, `${s.host}/bad/n:1`, '--referrers');
  assert.equal(wrong.code, 4, wrong.stderr);
  assert.match(wrong.stderr, /listed as a referrer of sha256:\w+, but its subject is sha256:/);
  assert.equal((await request(`${s.url}/v2/bad/n/tags/list`)).status, 404, 'nothing pushed');

  // Nine referrers, each of the one before: one level too deep.
  const chain: string[] = [];
  for (let i = 0; i < 9; i++) chain.push((await ok(f, 'attach', chain.at(-1) ?? 'local/n:1', '--type', SIG, i % 2 ? 'eval.json' : 'sig.bin')).trim());
  const deep = await mpk(f.env, f.dir, 'push', 'local/n:1', `${s.host}/deep/n:1`, '--referrers');
  assert.equal(deep.code, 4, deep.stderr);
  assert.match(deep.stderr, /referrers nested more than 8 deep/);
  assert.equal((await request(`${s.url}/v2/deep/n/tags/list`)).status, 404, 'nothing pushed');
  // From the first of them, eight levels remain: fine.
  const eight = await mpk(f.env, f.dir, 'copy', chain[0]!, `${s.host}/deep/x:1`, '--referrers', '--json');
  assert.equal(eight.code, 0, eight.stderr);
  assert.equal(JSON.parse(eight.stdout.trimEnd().split('\n').at(-1)!).referrers, 8);
});
