/**
 * Ollama interop: a models directory laid out by the test exactly as Ollama writes it
 * (peer-formats.md §2), imported (hard links, verified, all or nothing) and exported back byte for
 * byte; export of a ModelPack GGUF model; names; and an Ollama-style artifact pulled from a real
 * docker-registry.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, stat, unlink, writeFile } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { buildModel } from '../build/build-model.js';
import { hasErrorCode } from '../errors.js';
import { parseModelfile } from '../modelfile/parse.js';
import { DOCKER_MANIFEST } from '../oci/media-types.js';
import { digestBytes } from '../oci/digest.js';
import { LocalStore } from '../store/store.js';
import { requirePeer } from '../test-support/peers.js';
import { startDockerRegistry, type RegistryPeer } from '../test-support/registry-peer.js';
import { makeModelDir, tempDir, writeTree } from '../test-support/tmp.js';
import { cli, fakeGguf, ok, pushHandMade, sha } from '../test-support/interop.js';
import { blobPath, layOut, storeBlobPath } from '../test-support/ollama-dir.js';
import { OLLAMA_CONFIG, OLLAMA_LICENSE, OLLAMA_MODEL } from './ollama.js';
import { formatOllamaName, manifestCandidates, parseOllamaName } from './ollama-dir.js';

let shared: Promise<RegistryPeer> | undefined;
after(async () => {
  if (shared) await (await shared).stop();
});

test('import links every blob (no copy), checks it, and export writes back the identical manifest and blobs', async (t) => {
  const o = await layOut(t);
  const { run, store: root } = await cli(t);
  const r = ok<{ reference: string; digest: string; blobs: { digest: string; how: string }[] }>(await run('import', 'ollama', 'tiny', '--models', o.dir, '--json'));
  assert.equal(r.reference, 'ollama/tiny:latest');
  assert.equal(r.digest, digestBytes(o.manifest), "the store keeps Ollama's manifest bytes: same digest as Ollama's model ID");
  assert.deepEqual(r.blobs.map((b) => b.how), Array(o.blobs.size).fill('linked'));
  for (const d of o.blobs.keys()) {
    const [a, b] = [await stat(blobPath(o.dir, d)), await stat(await storeBlobPath(root, d))];
    assert.equal(a.ino, b.ino, `${d}: a hard link, not a copy`);
    assert.equal(a.dev, b.dev);
    assert.equal(b.mode & 0o777, 0o444, 'the store keeps its blobs read-only (so does the linked Ollama file)');
  }

  const ls = ok<Record<string, unknown>[]>(await run('ls', '--json'));
  assert.deepEqual([ls[0]!.reference, ls[0]!.kind, ls[0]!.format, ls[0]!.paramSize, ls[0]!.quantization], ['ollama/tiny:latest', 'ollama', 'gguf', '1.2B', 'Q4_K_M']);
  assert.match((await run('inspect', 'ollama/tiny:latest')).stdout, /Architecture:\s+llama/);
  const out = await tempDir(t);
  ok(await run('extract', 'ollama/tiny:latest', out, '--json'));
  assert.deepEqual((await readdir(out)).sort(), ['LICENSE', 'model.gguf', 'params.json', 'system.txt', 'template.gotmpl']);
  assert.equal(sha(await readFile(join(out, 'model.gguf'))), sha(o.gguf));

  // Out again, to a second models directory: the very same bytes.
  const dir2 = await tempDir(t, 'mpk-ollama2-');
  const e = ok<{ converted: boolean; digest: string }>(await run('export', 'ollama', 'ollama/tiny:latest', 'tiny', '--models', dir2, '--json'));
  assert.equal(e.converted, false);
  assert.equal(e.digest, digestBytes(o.manifest));
  assert.ok((await readFile(join(dir2, 'manifests', 'registry.ollama.ai', 'library', 'tiny', 'latest'))).equals(o.manifest), 'identical manifest bytes');
  assert.deepEqual((await readdir(join(dir2, 'blobs'))).sort(), (await readdir(join(o.dir, 'blobs'))).sort());
  for (const [d, bytes] of o.blobs) {
    assert.ok((await readFile(blobPath(dir2, d))).equals(bytes), `${d}: identical blob`);
    assert.equal((await stat(blobPath(dir2, d))).ino, (await stat(await storeBlobPath(root, d))).ino, `${d}: linked from the store`);
  }
  assert.equal((await run('export', 'ollama', 'ollama/tiny:latest', 'tiny', '--models', dir2)).code, 0, 'exporting again is a no-op');

  // Importing again moves nothing; prune keeps what the Docker v2 manifest reaches.
  const again = ok<{ blobs: { how: string }[] }>(await run('import', 'ollama', 'registry.ollama.ai/library/tiny:latest', '--models', o.dir, '--json'));
  assert.deepEqual(new Set(again.blobs.map((b) => b.how)), new Set(['present']));
  assert.equal((await run('prune')).code, 0);
  assert.equal((await run('verify')).code, 0);
});

test('import refuses a corrupt or missing blob and stores nothing', async (t) => {
  const o = await layOut(t, 12);
  const { run, store: root } = await cli(t);
  const [paramsDigest] = [...o.blobs.entries()].find(([, b]) => b.toString().includes('temperature'))!;
  const p = blobPath(o.dir, paramsDigest);
  const bad = Buffer.from(o.blobs.get(paramsDigest)!);
  bad[2] = bad[2]! ^ 0x20; // same size, other bytes
  await writeFile(p, bad);
  const r = await run('import', 'ollama', 'tiny:latest', '--models', o.dir);
  assert.equal(r.code, 4, r.stderr);
  assert.match(r.stderr, /^mpk: .*sha256-[0-9a-f]{64}: Ollama blob is corrupt .*Hint: run ollama pull tiny:latest/);
  assert.deepEqual(await readdir(join(root, 'blobs', 'sha256')), [], 'no blob was stored, not even the good ones');
  assert.deepEqual(await readdir(join(root, 'ingest')).catch(() => []), [], 'no temp file left behind');
  assert.equal(((await stat(blobPath(o.dir, digestBytes(o.gguf)))).mode & 0o777), 0o644, "Ollama's files untouched");
  assert.deepEqual(ok<unknown[]>(await run('ls', '--json')), []);

  await writeFile(p, Buffer.concat([o.blobs.get(paramsDigest)!, Buffer.from(' ')]));
  assert.equal((await run('import', 'ollama', 'tiny', '--models', o.dir)).code, 4, 'wrong size');
  await unlink(p);
  const missing = await run('import', 'ollama', 'tiny', '--models', o.dir);
  assert.equal(missing.code, 3);
  assert.match(missing.stderr, /blob of tiny:latest is missing/);
  assert.equal((await run('import', 'ollama', 'nope', '--models', o.dir)).code, 3);
});

test('Ollama names: defaults, hosts with ports, and nothing that leaves the models directory', async (t) => {
  assert.deepEqual(parseOllamaName('llama3.2'), { host: 'registry.ollama.ai', namespace: 'library', model: 'llama3.2', tag: 'latest' });
  assert.deepEqual(parseOllamaName('me/phi3:mini'), { host: 'registry.ollama.ai', namespace: 'me', model: 'phi3', tag: 'mini' });
  assert.deepEqual(parseOllamaName('localhost:5000/ns/m:t'), { host: 'localhost:5000', namespace: 'ns', model: 'm', tag: 't' });
  assert.equal(formatOllamaName(parseOllamaName('registry.ollama.ai/library/x:1')), 'x:1');
  assert.deepEqual(manifestCandidates('/m', parseOllamaName('x')), ['/m/manifests-v2/ollama.com/library/x/latest', '/m/manifests/registry.ollama.ai/library/x/latest', '/m/manifests/ollama.com/library/x/latest']);
  for (const bad of ['../x', 'a/../x', 'x:../y', '.hidden', 'a/b/c/d', 'ns.dot/x', 'x:', '', 'x/']) {
    assert.throws(() => parseOllamaName(bad), (e: unknown) => hasErrorCode(e, 'INVALID_REFERENCE'), bad);
  }
  const { run } = await cli(t);
  const dir = await tempDir(t);
  const r = await run('import', 'ollama', '../x', '--models', dir);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /invalid Ollama model name "\.\.\/x".*Hint:/);
  assert.equal((await run('export', 'ollama', 'x:1', '../../etc/y', '--models', dir)).code, 2);
  assert.equal((await run('import', 'docker', 'x', '--models', dir)).code, 2);
});

test('export of a ModelPack GGUF model: an Ollama manifest around the same blob, importable again', async (t) => {
  const { run, store: root } = await cli(t);
  const dir = await tempDir(t);
  const gguf = fakeGguf(21, 120_000);
  await writeTree(dir, { 'tiny.Q4_K_M.gguf': gguf, LICENSE: 'MIT License\n', 'chat_template.jinja': '{{ messages }}' });
  const modelfile = parseModelfile('NAME tiny\nARCH llama\nFORMAT gguf\nPARAMSIZE 1.1B\nQUANTIZATION Q4_K_M\nMODEL tiny.Q4_K_M.gguf\nDOC LICENSE\nCONFIG chat_template.jinja\n');
  const store = await LocalStore.open(root);
  await buildModel(store, { contextDir: dir, reference: 'models/tiny:1', modelfile });
  await makeModelDir(join(dir, 'st'));
  await buildModel(store, { contextDir: join(dir, 'st'), reference: 'models/st:1' });
  await writeTree(join(dir, 'other'), { 'other.gguf': fakeGguf(22, 1000) });
  await buildModel(store, { contextDir: join(dir, 'other'), reference: 'models/other:1' });
  store.close();

  const models = await tempDir(t, 'mpk-ollama-');
  const r = await run('export', 'ollama', 'models/tiny:1', 'tiny:q4', '--models', models, '--json');
  const e = ok<{ converted: boolean; manifestPath: string }>(r);
  assert.equal(e.converted, true);
  assert.match(r.stderr, /warning: left out 1 file .*chat_template\.jinja/);
  const manifestBytes = await readFile(join(models, 'manifests', 'registry.ollama.ai', 'library', 'tiny', 'q4'));
  const m = JSON.parse(manifestBytes.toString());
  assert.equal(m.schemaVersion, 2);
  assert.equal(m.mediaType, DOCKER_MANIFEST);
  assert.equal(m.config.mediaType, OLLAMA_CONFIG);
  assert.deepEqual(m.layers.map((l: { mediaType: string }) => l.mediaType), [OLLAMA_MODEL, OLLAMA_LICENSE]);
  assert.equal(m.layers[0].digest, digestBytes(gguf), 'the model layer is the GGUF blob itself');
  const cfg = JSON.parse((await readFile(blobPath(models, m.config.digest))).toString());
  assert.deepEqual(
    { f: cfg.model_format, fam: cfg.model_family, t: cfg.model_type, q: cfg.file_type, os: cfg.os, ids: cfg.rootfs.diff_ids },
    { f: 'gguf', fam: 'llama', t: '1.1B', q: 'Q4_K_M', os: 'linux', ids: m.layers.map((l: { digest: string }) => l.digest) },
  );
  assert.equal((await stat(blobPath(models, digestBytes(gguf)))).ino, (await stat(await storeBlobPath(root, digestBytes(gguf)))).ino, 'no copy of the weights');

  const back = ok<{ blobs: { digest: string; how: string }[] }>(await run('import', 'ollama', 'tiny:q4', '--models', models, '-t', 'models/tiny:from-ollama', '--json'));
  assert.equal(back.blobs.find((b) => b.digest === digestBytes(gguf))!.how, 'present');

  const clash = await run('export', 'ollama', 'models/other:1', 'tiny:q4', '--models', models);
  assert.equal(clash.code, 7);
  assert.match(clash.stderr, /tiny:q4: Ollama already has a different model of that name.*Hint: .*--force/);
  ok(await run('export', 'ollama', 'models/other:1', 'tiny:q4', '--models', models, '--force', '--json'));
  assert.notDeepEqual(await readFile(join(models, 'manifests', 'registry.ollama.ai', 'library', 'tiny', 'q4')), manifestBytes);

  const st = await run('export', 'ollama', 'models/st:1', 'st', '--models', models);
  assert.equal(st.code, 2);
  assert.match(st.stderr, /has no GGUF weight/);
});

test('an Ollama-style artifact (Docker v2 manifest, ollama layers) pulled from docker-registry exports to Ollama byte for byte', async (t) => {
  if (!requirePeer(t, 'docker-registry')) return;
  shared ??= startDockerRegistry(null);
  const reg = await shared;
  const o = await layOut(t, 13);
  await pushHandMade(t, reg.host, 'library/tiny', 'latest', {
    manifest: o.manifest,
    manifestDesc: { mediaType: DOCKER_MANIFEST, digest: digestBytes(o.manifest), size: o.manifest.length },
    blobs: o.blobs,
  });
  const { run } = await cli(t);
  const ref = `${reg.host}/library/tiny:latest`;
  const pulled = ok(await run('pull', ref, '--json'));
  assert.equal(pulled.digest, digestBytes(o.manifest));
  assert.equal(pulled.mediaType, DOCKER_MANIFEST);
  const insp = ok<{ kind: string; quantization: string }>(await run('inspect', ref, '--json'));
  assert.deepEqual([insp.kind, insp.quantization], ['ollama', 'Q4_K_M']);
  const models = await tempDir(t, 'mpk-ollama-');
  ok(await run('export', 'ollama', ref, `${reg.host}/library/tiny:latest`, '--models', models, '--json'));
  const written = await readFile(join(models, 'manifests', reg.host, 'library', 'tiny', 'latest'));
  assert.ok(written.equals(o.manifest), 'the manifest bytes the registry served');
  for (const [d, b] of o.blobs) assert.ok((await readFile(blobPath(models, d))).equals(b), d);
});

// registry.ollama.ai serves manifests as `Content-Type: text/plain` (ollama#6470). mpk's remote
// client takes the Content-Type as the media type, so the manifest is fetched as a plain blob and
// the pull fails. The fix belongs in src/registry/remote-manifests.ts (use the document's own
// mediaType when the Content-Type is not a manifest type); until then this is a known gap.
test('pull from a registry that serves manifests as text/plain, as registry.ollama.ai does', async (t) => {
  if (!requirePeer(t, 'docker-registry')) return;
  shared ??= startDockerRegistry(null);
  const reg = await shared;
  const o = await layOut(t, 14);
  await pushHandMade(t, reg.host, 'library/plain', 'latest', {
    manifest: o.manifest,
    manifestDesc: { mediaType: DOCKER_MANIFEST, digest: digestBytes(o.manifest), size: o.manifest.length },
    blobs: o.blobs,
  });
  const srv = createServer((req, res) => {
    const up = request(`${reg.url}${req.url}`, { method: req.method, headers: { ...req.headers, host: reg.host }, agent: false }, (r) => {
      const headers = { ...r.headers };
      if (/\/manifests\//.test(req.url ?? '')) headers['content-type'] = 'text/plain; charset=utf-8';
      res.writeHead(r.statusCode ?? 502, headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => srv.close(() => r())));
  const host = `127.0.0.1:${(srv.address() as AddressInfo).port}`;
  const { run } = await cli(t);
  const pulled = ok(await run('pull', `${host}/library/plain:latest`, '--json'));
  assert.equal(pulled.mediaType, DOCKER_MANIFEST);
  assert.equal(ok<{ kind: string }>(await run('inspect', `${host}/library/plain:latest`, '--json')).kind, 'ollama');
});
