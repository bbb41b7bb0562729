/**
 * Metadata before bytes, against a real `mpk serve` whose access log counts every byte it sends:
 * `mpk inspect HOST/NAME:TAG` (a model, an index of variants) and `mpk pull --dry-run`.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mpk } from '../test-support/cli.js';
import { OCI_INDEX, OCI_MANIFEST, request, startTestServer } from '../test-support/serve.js';
import { sampleModel, writeGguf } from '../test-support/gguf-writer.js';
import { writeTinyLlama, type TinyLlamaFileType } from '../test-support/tiny-llama.js';
import { tempDir } from '../test-support/tmp.js';

type T = TestContext;

interface Served {
  host: string;
  url: string;
  /** Access-log entries since the last call. */
  take(): { method: string; url: string; status: number; out: number }[];
}

async function server(t: T): Promise<Served> {
  let log: { method: string; url: string; status: number; out: number }[] = [];
  const s = await startTestServer(t, { accessLog: (line) => log.push(JSON.parse(line)), logFormat: 'json' });
  return {
    host: s.host,
    url: s.url,
    take: () => {
      const l = log;
      log = [];
      return l;
    },
  };
}

async function ok(r: Promise<{ code: number; stdout: string; stderr: string }>): Promise<string> {
  const x = await r;
  assert.equal(x.code, 0, x.stderr);
  return x.stdout;
}

/** Every file under dir with size and mtime: a store that nothing wrote to gives the same list. */
async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    const p = join(e.parentPath, e.name);
    const s = await stat(p);
    out.push(`${p} ${e.isFile() ? s.size : 'dir'} ${s.mtimeMs}`);
  }
  return out.sort();
}

const omit = (o: Record<string, unknown>, ...keys: string[]) => Object.fromEntries(Object.entries(o).filter(([k]) => !keys.includes(k)));

test('inspect of a remote model: the local view from manifest and config, no weight fetched', async (t) => {
  const reg = await server(t);
  const dir = await tempDir(t);
  const env = { MPK_HOME: join(dir, 'store') };
  const ctxDir = join(dir, 'model');
  await ok(mpk(env, dir, 'ls')); // the store exists before anything is measured
  // A GGUF of 64 MiB (sparse): the real header and metadata, one large weight tensor.
  const spec = sampleModel();
  spec.tensors = [...(spec.tensors ?? []), { name: 'blk.9.big.weight', dims: [4096, 4096], type: 0 }];
  await mkdir(ctxDir);
  await writeGguf(join(ctxDir, 'model.gguf'), spec, { data: 'sparse' });
  await ok(mpk(env, dir, 'build', '-t', 'local/big:1', ctxDir));
  const ref = `${reg.host}/team/big:1`;
  await ok(mpk(env, dir, 'push', 'local/big:1', ref, '-q'));
  const local = JSON.parse(await ok(mpk(env, dir, 'inspect', 'local/big:1', '--json')));
  const weight = local.files.find((f: { kind: string }) => f.kind === 'weight');
  assert.ok(weight.size > 64 * 1024 * 1024);
  reg.take();

  // The store does not hold that name: inspect reads the registry.
  const started = Date.now();
  const remote = JSON.parse(await ok(mpk(env, dir, 'inspect', ref, '--json')));
  const ms = Date.now() - started;
  const served = reg.take();
  assert.deepEqual(omit(remote, 'reference', 'fetchedBytes', 'modelBytes'), omit(local, 'reference'));
  assert.equal(remote.reference, ref);
  assert.equal(remote.ggufMetadata['general.name'], 'Tiny Llama Test');
  assert.equal(remote.contextLength, 4096);
  assert.equal(remote.modelBytes, local.size);
  // What the server sent: the manifest and the config; never the weight.
  assert.ok(!served.some((e) => e.url.includes(weight.digest)), JSON.stringify(served));
  const bodyBytes = served.filter((e) => e.method === 'GET').reduce((n, e) => n + e.out, 0); // headers included
  assert.ok(remote.fetchedBytes <= bodyBytes, `${remote.fetchedBytes} counted, ${bodyBytes} sent`);
  assert.ok(bodyBytes < local.size / 100, `${bodyBytes} bytes sent for a ${local.size}-byte model`);
  assert.deepEqual(served.map((e) => e.method).sort(), ['GET', 'GET']);
  t.diagnostic(`remote inspect: ${remote.fetchedBytes} bytes of metadata (${bodyBytes} on the wire) for a ${local.size}-byte model, ${ms} ms`);

  // The text view: the same lines as the local one, and the bytes fetched.
  const text = await ok(mpk(env, dir, 'inspect', ref));
  const localText = await ok(mpk(env, dir, 'inspect', 'local/big:1'));
  assert.equal(text.replace(/^Reference:.*\n/, '').replace(/\nfetched .*\n$/, ''), localText.replace(/^Reference:.*\n/, ''));
  assert.match(text, /\nfetched \d+\.\d KiB of metadata; the model is 64\.\d MiB\n$/);
  assert.match(text, /general\.name\s+Tiny Llama Test/);

  // A pulled copy is what `inspect HOST/NAME:TAG` shows (no network); --remote asks the registry.
  await ok(mpk(env, dir, 'pull', ref, '-q'));
  reg.take();
  const again = JSON.parse(await ok(mpk(env, dir, 'inspect', ref, '--json')));
  assert.equal(again.fetchedBytes, undefined);
  assert.deepEqual(reg.take(), []);
  assert.equal(JSON.parse(await ok(mpk(env, dir, 'inspect', ref, '--json', '--remote'))).fetchedBytes, remote.fetchedBytes);
  const nf = await mpk(env, dir, 'inspect', `${reg.host}/team/none:1`);
  assert.equal(nf.code, 3, nf.stderr);
  assert.match(nf.stderr, /team\/none:1: MANIFEST_UNKNOWN/);
});

/** Three GGUF variants pushed as HOST/team/tiny:TYPE, and an index of them as :all. */
async function variants(t: T, reg: Served, dir: string, env: NodeJS.ProcessEnv): Promise<{ types: TinyLlamaFileType[]; digests: string[]; index: string }> {
  const types: TinyLlamaFileType[] = ['F32', 'F16', 'Q8_0'];
  const entries = [];
  for (const ft of types) {
    const d = join(dir, ft);
    await mkdir(d);
    await writeTinyLlama(join(d, 'model.gguf'), { fileType: ft });
    await writeFile(join(d, 'README.md'), 'the same card for every variant\n');
    await ok(mpk(env, dir, 'build', '-t', `local/tiny:${ft}`, d));
    await ok(mpk(env, dir, 'push', `local/tiny:${ft}`, `${reg.host}/team/tiny:${ft.toLowerCase()}`, '-q'));
    const head = await request(`${reg.url}/v2/team/tiny/manifests/${ft.toLowerCase()}`, { method: 'HEAD', headers: { accept: OCI_MANIFEST } });
    assert.equal(head.status, 200);
    entries.push({
      mediaType: OCI_MANIFEST,
      digest: String(head.headers['docker-content-digest']),
      size: Number(head.headers['content-length']),
      annotations: { 'org.cncf.model.quantization': ft },
    });
  }
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: entries }));
  const put = await request(`${reg.url}/v2/team/tiny/manifests/all`, { method: 'PUT', body: index, headers: { 'content-type': OCI_INDEX } });
  assert.equal(put.status, 201, put.text);
  void t;
  return { types, digests: entries.map((e) => e.digest), index: `${reg.host}/team/tiny:all` };
}

test('inspect of a remote index: every variant with its size and GGUF metadata, no weight fetched', async (t) => {
  const reg = await server(t);
  const dir = await tempDir(t);
  const env = { MPK_HOME: join(dir, 'store') };
  const { types, digests, index } = await variants(t, reg, dir, env);
  const weights = new Set<string>();
  for (const ft of types) {
    const l = JSON.parse(await ok(mpk(env, dir, 'inspect', `local/tiny:${ft}`, '--json')));
    for (const f of l.files) if (f.kind === 'weight') weights.add(f.digest);
  }
  reg.take();
  const r = JSON.parse(await ok(mpk(env, dir, 'inspect', index, '--json')));
  const served = reg.take();
  assert.equal(r.kind, 'index');
  assert.deepEqual(r.variantDetails.map((v: { digest: string }) => v.digest), digests);
  assert.deepEqual(r.variantDetails.map((v: { ggufMetadata: Record<string, unknown> }) => v.ggufMetadata['general.architecture']), ['llama', 'llama', 'llama']);
  assert.deepEqual(r.variantDetails.map((v: { annotations: Record<string, string> }) => v.annotations['org.cncf.model.quantization']), types);
  for (const v of r.variantDetails) assert.ok(v.size > 100_000 && v.files.some((f: { kind: string }) => f.kind === 'weight'));
  assert.ok(!served.some((e) => [...weights].some((w) => e.url.includes(w))), 'no weight fetched');
  // 1 index + 3 manifests + 3 configs; the README layer is not read either.
  assert.equal(served.filter((e) => e.method === 'GET').length, 7);
  const sent = served.reduce((n, e) => n + e.out, 0);
  assert.ok(r.fetchedBytes <= sent && sent < r.modelBytes / 20, `${sent} of ${r.modelBytes}`);
  t.diagnostic(`remote index inspect: ${r.fetchedBytes} bytes of metadata for 3 variants of ${r.modelBytes} bytes`);

  const text = await ok(mpk(env, dir, 'inspect', index));
  assert.match(text, /Kind:\s+index/);
  for (const [i, ft] of types.entries()) assert.match(text, new RegExp(`── Variant ${i + 1} of 3: ${ft} \\(sha256:`));
  assert.equal(text.match(/general\.architecture\s+llama/g)?.length, 3);
  assert.match(text, /\nfetched \d+\.\d KiB of metadata; the index and its 3 variants hold \d+\.\d [KM]iB\n$/);
});

test('pull --dry-run: fetch vs present per blob, before and after a real pull; the store untouched', async (t) => {
  const reg = await server(t);
  const dir = await tempDir(t);
  const { index } = await variants(t, reg, dir, { MPK_HOME: join(dir, 'build-store') });
  const env = { MPK_HOME: join(dir, 'store') };
  await ok(mpk(env, dir, 'ls'));
  const q8 = `${reg.host}/team/tiny:q8_0`;

  const before = await snapshot(env.MPK_HOME);
  reg.take();
  const plan = JSON.parse(await ok(mpk(env, dir, 'pull', '--dry-run', '--json', q8)));
  assert.deepEqual(await snapshot(env.MPK_HOME), before, 'nothing written');
  assert.deepEqual(reg.take().map((e) => `${e.method} ${e.url.replace(/sha256:\w+/, 'D')}`), ['GET /v2/team/tiny/manifests/q8_0']);
  assert.equal(plan.destination, q8);
  assert.equal(plan.tag, 'none');
  assert.deepEqual(plan.entries.map((e: { kind: string; action: string; path?: string }) => [e.kind, e.action, e.path]), [
    ['manifest', 'fetch', undefined],
    ['config', 'fetch', undefined],
    ['weight', 'fetch', 'model.gguf'],
    ['doc', 'fetch', 'README.md'],
  ]);
  assert.equal(plan.totals.fetch, 4);
  assert.equal(plan.totals.fetchBytes, plan.entries.reduce((n: number, e: { size: number }) => n + e.size, 0));
  assert.equal(plan.fetchedBytes, plan.entries[0].size);

  const text = await ok(mpk(env, dir, 'pull', '--dry-run', q8));
  assert.match(text, /^ACTION\s+SIZE\s+DIGEST\s+KIND\s+PATH\n/m);
  assert.match(text, /\nfetch\s+\S+ KiB\s+sha256:\w+\s+weight\s+model\.gguf\n/);
  assert.match(text, /would fetch 4 blobs, .*; 0 already in the store .*wrote nothing\n$/);
  assert.deepEqual(await snapshot(env.MPK_HOME), before, 'nothing written by the text form either');

  await ok(mpk(env, dir, 'pull', q8, '-q'));
  const after = JSON.parse(await ok(mpk(env, dir, 'pull', '--dry-run', '--json', q8)));
  assert.equal(after.tag, 'same');
  assert.deepEqual(after.entries.map((e: { action: string }) => e.action), ['present', 'present', 'present', 'present']);
  assert.equal(after.totals.fetchBytes, 0);
  assert.match(await ok(mpk(env, dir, 'pull', '--dry-run', q8)), /would fetch 0 blobs, 0 B; 4 already in the store/);

  // Another variant from the index: only the README it shares is present.
  const stored = await snapshot(env.MPK_HOME);
  const f16 = JSON.parse(await ok(mpk(env, dir, 'pull', '--dry-run', '--json', index, '--variant', 'F16')));
  assert.deepEqual(await snapshot(env.MPK_HOME), stored);
  assert.equal(f16.destination, index);
  assert.notEqual(f16.root.digest, f16.resolved.digest);
  assert.deepEqual(f16.entries.map((e: { kind: string; action: string }) => `${e.kind} ${e.action}`), ['manifest fetch', 'config fetch', 'weight fetch', 'doc present']);
  // Without a choice, dry-run refuses as pull does, naming the variants.
  const many = await mpk(env, dir, 'pull', '--dry-run', index);
  assert.notEqual(many.code, 0);
  assert.match(many.stderr, /F32.*F16.*Q8_0/s);
  assert.deepEqual(await snapshot(env.MPK_HOME), stored);
});
