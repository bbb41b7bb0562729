/**
 * `mpk attach` and `mpk referrers` (issue 13, Referrers): in the local store (unnamed index.json
 * entries: not models, kept by prune while their subject is), against `mpk serve` (referrers API)
 * and docker-registry 2.8 (no referrers API: the sha256-<hex> tag fallback).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { mpk } from '../../test-support/cli.js';
import { startTestServer, request } from '../../test-support/serve.js';
import { fileRegistry } from '../../test-support/registry-peer.js';
import { makeModelDir, tempDir, writeTree } from '../../test-support/tmp.js';
import { guessMediaType } from '../../transfer/referrers.js';

const registry = fileRegistry();
const SBOM = 'application/spdx+json';
const EVAL = 'application/vnd.mpk.eval+json';
const SIG = 'application/vnd.example.signature';

interface Fixture {
  env: NodeJS.ProcessEnv;
  dir: string;
  store: string;
}

async function fixture(t: TestContext): Promise<Fixture> {
  const dir = await tempDir(t);
  const store = join(dir, 'store');
  const env = { MPK_HOME: store, DOCKER_CONFIG: join(dir, 'docker') };
  await makeModelDir(join(dir, 'model'));
  await writeTree(dir, {
    'sbom.spdx.json': JSON.stringify({ spdxVersion: 'SPDX-2.3', name: 'model' }),
    'eval.json': JSON.stringify({ mmlu: 0.61 }),
    'NOTES.md': '# eval notes\n',
    'sig.bin': Buffer.from([1, 2, 3, 4]),
  });
  const b = await mpk(env, dir, 'build', '-t', 'local/m:1', 'model', '-q');
  assert.equal(b.code, 0, b.stderr);
  return { env, dir, store };
}

async function ok(f: Fixture, ...argv: string[]): Promise<string> {
  const r = await mpk(f.env, f.dir, ...argv);
  assert.equal(r.code, 0, `${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const DIGEST = /^sha256:[0-9a-f]{64}\n$/;

/** Attaches SBOM + eval (two files) to REF, then a signature to the SBOM; checks the tree. */
async function attachAndList(f: Fixture, ref: string, sbomRef: (digest: string) => string): Promise<void> {
  const sbom = await ok(f, 'attach', ref, '--type', SBOM, 'sbom.spdx.json');
  assert.match(sbom, DIGEST);
  const evalOut = JSON.parse(await ok(f, 'attach', ref, '--type', EVAL, 'eval.json', 'NOTES.md', '--json'));
  assert.equal(evalOut.artifactType, EVAL);
  assert.deepEqual(
    evalOut.files.map((l: { mediaType: string; annotations: Record<string, string> }) => [l.mediaType, l.annotations['org.opencontainers.image.title']]),
    [['application/json', 'eval.json'], ['text/markdown', 'NOTES.md']],
  );
  const sbomDigest = sbom.trim();
  const sig = (await ok(f, 'attach', sbomRef(sbomDigest), '--type', SIG, 'sig.bin')).trim();

  const tree = await ok(f, 'referrers', ref);
  const lines = tree.trimEnd().split('\n');
  assert.match(lines[0]!, /@sha256:[0-9a-f]{64}$/);
  assert.equal(lines.length, 4, tree);
  const sbomLine = lines.findIndex((l) => l.includes(sbomDigest));
  assert.match(lines[sbomLine]!, new RegExp(`^[├└]── application/spdx\\+json ${sbomDigest} \\(\\d+ B, 1 file\\)$`));
  assert.match(lines[sbomLine + 1]!, new RegExp(`^[│ ]   └── ${SIG} ${sig} \\(4 B, 1 file\\)$`), tree);
  assert.ok(lines.some((l) => l.includes(`${EVAL} sha256:`) && l.endsWith('2 files)')), tree);

  const only = await ok(f, 'referrers', ref, '--type', SBOM);
  assert.equal(only.trimEnd().split('\n').length, 2, only);
  assert.ok(only.includes(sbomDigest) && !only.includes(EVAL));
  const json = JSON.parse(await ok(f, 'referrers', ref, '--json'));
  assert.equal(json.referrers.length, 2);
  const s = json.referrers.find((n: { digest: string }) => n.digest === sbomDigest);
  assert.equal(s.artifactType, SBOM);
  assert.deepEqual(s.referrers.map((n: { digest: string }) => n.digest), [sig]);
}

test('guessMediaType: by extension, octet-stream otherwise', () => {
  assert.equal(guessMediaType('bom.spdx.json'), 'application/spdx+json');
  assert.equal(guessMediaType('a.JSON'), 'application/json');
  assert.equal(guessMediaType('card.md'), 'text/markdown');
  assert.equal(guessMediaType('blob'), 'application/octet-stream');
});

test('local: attach and list referrers (nested, --type); ls does not show them; prune keeps them while the model is kept', async (t) => {
  const f = await fixture(t);
  await attachAndList(f, 'local/m:1', (d) => d);
  const index = JSON.parse(await readFile(join(f.store, 'index.json'), 'utf8'));
  assert.equal(index.manifests.length, 4, 'the model and three unnamed referrers');
  assert.equal(index.manifests.filter((m: { annotations?: object }) => m.annotations).length, 1);

  assert.equal(await ok(f, 'ls', '-q'), 'local/m:1\n');
  assert.equal(JSON.parse(await ok(f, 'ls', '--json')).length, 1);
  const pruned = await mpk(f.env, f.dir, 'prune', '--json');
  assert.equal(pruned.code, 0, pruned.stderr);
  assert.equal(JSON.parse(pruned.stdout).removed.length, 0, pruned.stdout);
  assert.equal((await ok(f, 'referrers', 'local/m:1')).trimEnd().split('\n').length, 4, 'all still listed after prune');

  // Once the model goes, prune takes its referrers (and theirs) too.
  await ok(f, 'rm', 'local/m:1');
  const gone = await mpk(f.env, f.dir, 'prune', '--json');
  assert.equal(gone.code, 0, gone.stderr);
  const after = JSON.parse(await readFile(join(f.store, 'index.json'), 'utf8'));
  assert.deepEqual(after.manifests, []);
  assert.deepEqual(await readdir(join(f.store, 'blobs', 'sha256')), []);
});

test('local: attach refuses a missing --type, a missing model and a missing file', async (t) => {
  const f = await fixture(t);
  const noType = await mpk(f.env, f.dir, 'attach', 'local/m:1', 'eval.json');
  assert.equal(noType.code, 2, noType.stderr);
  assert.match(noType.stderr, /--type is required/);
  const noModel = await mpk(f.env, f.dir, 'attach', 'local/none:1', '--type', EVAL, 'eval.json');
  assert.notEqual(noModel.code, 0);
  assert.match(noModel.stderr, /no such model/);
  const noFile = await mpk(f.env, f.dir, 'attach', 'local/m:1', '--type', EVAL, 'missing.json');
  assert.notEqual(noFile.code, 0);
  assert.match(noFile.stderr, /missing\.json/);
  assert.equal(JSON.parse(await readFile(join(f.store, 'index.json'), 'utf8')).manifests.length, 1);
});

test('mpk serve (referrers API): attach and list remotely, nested and by --type', async (t) => {
  const f = await fixture(t);
  const s = await startTestServer(t);
  const ref = `${s.host}/att/m:1`;
  await ok(f, 'push', 'local/m:1', ref, '-q');
  await attachAndList(f, ref, (d) => `${s.host}/att/m@${d}`);
  // The registry's own API answers, and no fallback tag was written.
  const tags = (await request(`${s.url}/v2/att/m/tags/list`)).json<{ tags: string[] }>();
  assert.deepEqual(tags.tags, ['1']);
});

test('docker-registry (no referrers API): attach and list through the sha256-<hex> tag', async (t) => {
  const reg = await registry(t);
  if (!reg) return;
  const f = await fixture(t);
  const ref = `${reg.host}/att/m:1`;
  await ok(f, 'push', 'local/m:1', ref, '-q');
  await attachAndList(f, ref, (d) => `${reg.host}/att/m@${d}`);
  const tags = (await request(`${reg.url}/v2/att/m/tags/list`)).json<{ tags: string[] }>();
  assert.equal(tags.tags.filter((x) => x.startsWith('sha256-')).length, 2, 'one fallback tag for the model, one for the SBOM');
});
