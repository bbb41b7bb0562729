/**
 * `mpk convert`: ModelPack → Docker Model Runner (the same blobs, a DMR config and manifest as
 * peer-formats.md §1 describes, deterministic), pushed to docker-registry and checked there as DMR's
 * puller checks it; and DMR → ModelPack.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { buildModel } from '../build/build-model.js';
import { parseModelfile } from '../modelfile/parse.js';
import { OCI_MANIFEST } from '../oci/media-types.js';
import { LocalStore } from '../store/store.js';
import { fileRegistry } from '../test-support/registry-peer.js';
import { makeModelDir, tempDir, writeTree } from '../test-support/tmp.js';
import { cli, descOf, fakeGguf, handMade, ok, sha, storeHandMade } from '../test-support/interop.js';
import { sampleModel, writeGguf } from '../test-support/gguf-writer.js';
import { assertValid, validators } from '../test-support/schemas.js';
import {
  DOCKER_AI_CHAT_TEMPLATE,
  DOCKER_AI_CONFIG_V01,
  DOCKER_AI_CONFIG_V02,
  DOCKER_AI_GGUF,
  DOCKER_AI_LICENSE,
  DOCKER_AI_MODEL_FILE,
  DOCKER_AI_SAFETENSORS,
  dockerAiSize,
} from './docker-ai.js';

/** The file's registry, started on first use; null when the test was skipped for lack of it. */
const registry = fileRegistry();

interface Doc {
  mediaType?: string;
  artifactType?: string;
  config: { mediaType: string; digest: string; size: number };
  layers: { mediaType: string; digest: string; size: number; annotations?: Record<string, string> }[];
}

const CREATED = '2026-01-02T03:04:05Z';

/** A GGUF model built by mpk (ModelPack) in a store at root, from files written to a temp dir. */
async function ggufModel(t: TestContext, root: string): Promise<{ dir: string; files: Record<string, Buffer> }> {
  const dir = await tempDir(t);
  const files = {
    'qwen2.5-0.5b-instruct-q4_k_m.gguf': fakeGguf(5, 150_000),
    LICENSE: Buffer.from('Apache License 2.0\n'),
    'chat_template.jinja': Buffer.from('{% for m in messages %}{{ m.content }}{% endfor %}'),
    'README.md': Buffer.from('# Qwen\n'),
  };
  await writeTree(dir, files);
  const modelfile = parseModelfile(
    ['NAME qwen2.5', 'ARCH qwen2', 'FORMAT gguf', 'PARAMSIZE 494M', 'QUANTIZATION Q4_K_M', 'MODEL *.gguf', 'CONFIG chat_template.jinja', 'DOC LICENSE', 'DOC README.md'].join('\n'),
  );
  const store = await LocalStore.open(root);
  try {
    await buildModel(store, { contextDir: dir, reference: 'models/qwen:1', modelfile, createdAt: CREATED });
  } finally {
    store.close();
  }
  return { dir, files };
}

async function storeDoc(root: string, ref: string): Promise<{ doc: Doc; digest: string }> {
  const store = await LocalStore.open(root);
  try {
    const d = await store.resolve(ref);
    return { doc: JSON.parse((await store.blobs.read(d, 1 << 22)).toString()) as Doc, digest: d.digest };
  } finally {
    store.close();
  }
}

async function blobCount(root: string): Promise<number> {
  return (await readdir(join(root, 'blobs', 'sha256'))).length;
}

/** GET from the registry with an Accept header: status, content type and body. */
function get(url: string, accept: string): Promise<{ status: number; type: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { Accept: accept }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('convert ModelPack GGUF → Docker Model Runner: v0.1 config, the same blobs, deterministic; pushed, it is what DMR pulls', async (t) => {
  const reg = await registry(t);
  if (!reg) return;
  const { run, store: root } = await cli(t);
  const { files } = await ggufModel(t, root);
  const { doc: src } = await storeDoc(root, 'models/qwen:1');
  const before = await blobCount(root);

  const r = ok<{ manifest: { digest: string }; config: { mediaType: string } }>(await run('convert', 'models/qwen:1', '--format', 'docker', '-t', 'models/qwen:docker', '--json'));
  assert.equal(r.config.mediaType, DOCKER_AI_CONFIG_V01);
  assert.equal(await blobCount(root), before + 2, 'only a config and a manifest are new: no layer byte copied');
  const { doc, digest } = await storeDoc(root, 'models/qwen:docker');
  assert.equal(digest, r.manifest.digest);
  assert.equal(doc.mediaType, OCI_MANIFEST);
  assert.equal(doc.artifactType, undefined, 'DMR sets artifactType only for CNCF output');
  assert.deepEqual(Object.fromEntries(doc.layers.map((l) => [l.annotations!['org.cncf.model.filepath'], l.mediaType])), {
    'qwen2.5-0.5b-instruct-q4_k_m.gguf': DOCKER_AI_GGUF,
    'chat_template.jinja': DOCKER_AI_CHAT_TEMPLATE,
    LICENSE: DOCKER_AI_LICENSE,
    'README.md': DOCKER_AI_MODEL_FILE,
  });
  assert.equal(doc.layers[0]!.mediaType, DOCKER_AI_GGUF, 'weights first');
  assert.deepEqual(doc.layers.map((l) => l.digest).sort(), src.layers.map((l) => l.digest).sort(), 'the same blobs');
  for (const l of doc.layers) {
    assert.equal(l.annotations!['org.cncf.model.file.mediatype.untested'], 'false');
    assert.equal(JSON.parse(l.annotations!['org.cncf.model.file.metadata+json']!).size, l.size);
  }
  const store = await LocalStore.open(root);
  const cfg = JSON.parse((await store.blobs.read(doc.config, 1 << 20)).toString());
  store.close();
  assert.deepEqual(cfg.config, { format: 'gguf', quantization: 'Q4_K_M', parameters: '494M', architecture: 'qwen2', size: '146.49KiB' });
  assert.deepEqual(cfg.descriptor, { created: CREATED });
  assert.deepEqual(cfg.rootfs, { type: 'rootfs', diff_ids: doc.layers.map((l) => l.digest) }, 'diff_ids match the layers in order');

  const again = ok<{ manifest: { digest: string } }>(await run('convert', 'models/qwen:1', '--format', 'docker', '-t', 'models/qwen:docker2', '--json'));
  assert.equal(again.manifest.digest, r.manifest.digest, 'converting twice gives the same digest');

  // Push, then read it back from the registry as `docker model pull` would.
  const remote = `${reg.host}/ai/qwen-mpk:0.5b`;
  assert.equal((await run('push', 'models/qwen:docker', remote, '--json')).code, 0);
  const m = await get(`${reg.url}/v2/ai/qwen-mpk/manifests/0.5b`, `${OCI_MANIFEST}, application/vnd.docker.distribution.manifest.v2+json`);
  assert.equal(m.status, 200);
  assert.equal(m.type, OCI_MANIFEST);
  assert.equal(`sha256:${sha(m.body)}`, r.manifest.digest);
  const pulledDoc = JSON.parse(m.body.toString()) as Doc;
  // DMR's checkCompat: a config type it knows and a format it supports.
  assert.ok([DOCKER_AI_CONFIG_V01, DOCKER_AI_CONFIG_V02, 'application/vnd.cncf.model.config.v1+json'].includes(pulledDoc.config.mediaType));
  const c = await get(`${reg.url}/v2/ai/qwen-mpk/blobs/${pulledDoc.config.digest}`, '*/*');
  assert.ok(['gguf', 'safetensors', 'dduf', 'diffusers'].includes(JSON.parse(c.body.toString()).config.format));
  const gguf = pulledDoc.layers.filter((l) => l.mediaType === DOCKER_AI_GGUF);
  assert.equal(gguf.length, 1);
  const w = await get(`${reg.url}/v2/ai/qwen-mpk/blobs/${gguf[0]!.digest}`, '*/*');
  assert.equal(w.body.subarray(0, 4).toString('latin1'), 'GGUF');

  // Round trip: pulled into another store and extracted, the files are the source files.
  const other = await cli(t);
  const out = await tempDir(t);
  ok(await other.run('pull', remote, '--extract', out, '--json'));
  for (const [p, bytes] of Object.entries(files)) assert.equal(sha(await readFile(join(out, p))), sha(bytes), p);
  assert.equal((await readdir(out)).length, Object.keys(files).length);
});

test('convert a real GGUF → Docker Model Runner: parameters, size, architecture, quantization, context and the gguf map from its header', async (t) => {
  const { run, store: root } = await cli(t);
  const dir = await tempDir(t);
  const { dataSize } = await writeGguf(join(dir, 'tiny.gguf'), sampleModel());
  const modelfile = parseModelfile('NAME tiny\nQUANTIZATION Q8_0\nPARAMSIZE 1.5M\nMODEL tiny.gguf\n'); // a wrong quantization
  const store = await LocalStore.open(root);
  await buildModel(store, { contextDir: dir, reference: 'models/tiny:1', modelfile, createdAt: CREATED });
  store.close();
  const r = await run('convert', 'models/tiny:1', '--format', 'docker', '-t', 'models/tiny:docker', '--json');
  ok(r);
  assert.match(r.stderr, /its config says quantization Q8_0, the GGUF header Q4_K_M; the DMR config takes the header's/);
  const { doc } = await storeDoc(root, 'models/tiny:docker');
  const s2 = await LocalStore.open(root);
  const cfg = JSON.parse((await s2.blobs.read(doc.config, 1 << 20)).toString());
  s2.close();
  const { gguf, ...rest } = cfg.config;
  assert.deepEqual(rest, { format: 'gguf', quantization: 'Q4_K_M', parameters: '1.47M', architecture: 'llama', size: dockerAiSize(dataSize, true), context_size: 4096 });
  assert.equal(gguf['general.architecture'], 'llama');
  assert.equal(gguf['general.file_type'], '15');
  assert.equal(gguf['llama.rope.freq_base'], '10000.000000', "Go's %f");
  assert.equal(gguf['tokenizer.ggml.add_bos_token'], 'true');
  assert.equal(gguf['tokenizer.ggml.tokens'], undefined, 'arrays over 50 items are left out, as DMR does');
  assert.equal(Object.keys(gguf).length, 12);
});

test('convert safetensors ModelPack → Docker Model Runner v0.2 keeps every file with its path', async (t) => {
  const { run, store: root } = await cli(t);
  const dir = await tempDir(t);
  await makeModelDir(dir);
  const store = await LocalStore.open(root);
  await buildModel(store, { contextDir: dir, reference: 'models/st:1' });
  store.close();
  ok(await run('convert', 'models/st:1', '--format', 'docker', '-t', 'models/st:docker', '--json'));
  const { doc } = await storeDoc(root, 'models/st:docker');
  assert.equal(doc.config.mediaType, DOCKER_AI_CONFIG_V02);
  const types = Object.fromEntries(doc.layers.map((l) => [l.annotations!['org.cncf.model.filepath'], l.mediaType]));
  assert.equal(types['model.safetensors'], DOCKER_AI_SAFETENSORS);
  assert.equal(types['data/train.jsonl'], DOCKER_AI_MODEL_FILE);
  assert.equal(Object.keys(types).length, 6);
  const s2 = await LocalStore.open(root);
  const cfg = JSON.parse((await s2.blobs.read(doc.config, 1 << 20)).toString());
  s2.close();
  assert.equal(cfg.config.format, 'safetensors');
  assert.equal(cfg.config.quantization, 'BF16', 'safetensors: the precision, named as DMR records the dtype');
  assert.equal(cfg.descriptor.created, undefined, 'no creation time unless the source or SOURCE_DATE_EPOCH has one');
  const out = await tempDir(t);
  ok(await run('extract', 'models/st:docker', out, '--json'));
  assert.equal(sha(await readFile(join(out, 'data/train.jsonl'))), sha(await readFile(join(dir, 'data/train.jsonl'))));
});

test('convert Docker Model Runner (archived builder form) → ModelPack, then extract: the same files', async (t) => {
  const { run, store: root } = await cli(t);
  const gguf = fakeGguf(9, 40_000);
  const license = Buffer.from('MIT\n');
  const layers = [descOf(DOCKER_AI_GGUF, gguf), descOf(DOCKER_AI_LICENSE, license)];
  const configBytes = Buffer.from(JSON.stringify({ config: { format: 'gguf', quantization: 'Q4_0', parameters: '1.1B', architecture: 'llama' }, descriptor: { created: '2025-03-01T00:00:00Z' }, rootfs: { type: 'rootfs', diff_ids: layers.map((l) => l.digest) } }));
  const a = handMade(OCI_MANIFEST, { schemaVersion: 2, mediaType: OCI_MANIFEST, config: descOf(DOCKER_AI_CONFIG_V01, configBytes), layers }, [configBytes, gguf, license]);
  const store = await LocalStore.open(root);
  await storeHandMade(store, 'ai/tiny:latest', a);
  store.close();
  ok(await run('convert', 'ai/tiny:latest', '--format', 'modelpack', '-t', 'models/tiny:mp', '--json'));
  const insp = ok<{ kind: string; format: string; quantization: string; paramSize: string; config: { descriptor: { createdAt: string }; config: { architecture: string } } }>(
    await run('inspect', 'models/tiny:mp', '--json'),
  );
  assert.deepEqual([insp.kind, insp.format, insp.quantization, insp.paramSize], ['modelpack', 'gguf', 'Q4_0', '1.1B']);
  assert.equal(insp.config.descriptor.createdAt, '2025-03-01T00:00:00Z');
  assert.equal(insp.config.config.architecture, 'llama');
  const out = await tempDir(t);
  ok(await run('extract', 'models/tiny:mp', out, '--json'));
  assert.equal(sha(await readFile(join(out, 'model.gguf'))), sha(gguf));
  assert.equal(sha(await readFile(join(out, 'LICENSE'))), sha(license));
  // And back: ModelPack → DMR gives GGUF and license layers again.
  ok(await run('convert', 'models/tiny:mp', '--format', 'docker', '-t', 'ai/tiny:again', '--json'));
  const { doc } = await storeDoc(root, 'ai/tiny:again');
  assert.deepEqual(doc.layers.map((l) => [l.mediaType, l.digest]), [[DOCKER_AI_GGUF, layers[0]!.digest], [DOCKER_AI_LICENSE, layers[1]!.digest]]);
});

test('convert: a source creation time that is not RFC 3339 is not carried over (the config would be invalid for the other side)', async (t) => {
  const { run, store: root } = await cli(t);
  const gguf = fakeGguf(10, 20_000);
  const store = await LocalStore.open(root);
  for (const [i, created] of ['now', '1700000000', 'March 1st'].entries()) {
    const layers = [descOf(DOCKER_AI_GGUF, gguf)];
    const configBytes = Buffer.from(JSON.stringify({ config: { format: 'gguf' }, descriptor: { created }, rootfs: { type: 'rootfs', diff_ids: layers.map((l) => l.digest) } }));
    await storeHandMade(store, `ai/t${i}:latest`, handMade(OCI_MANIFEST, { schemaVersion: 2, mediaType: OCI_MANIFEST, config: descOf(DOCKER_AI_CONFIG_V01, configBytes), layers }, [configBytes, gguf]));
  }
  store.close();
  const digests = new Set<string>();
  for (const i of [0, 1, 2]) {
    digests.add(ok<{ manifest: { digest: string } }>(await run('convert', `ai/t${i}:latest`, '--format', 'modelpack', '-t', `models/t${i}:mp`, '--json')).manifest.digest);
    const insp = ok<{ config: unknown; manifest: { annotations?: Record<string, string> } }>(await run('inspect', `models/t${i}:mp`, '--json'));
    assertValid(validators().configMain, insp.config, `config from created #${i}`);
    assertValid(validators().configV007, insp.config, `config from created #${i} (v0.0.7)`);
    assert.equal(insp.manifest.annotations?.['org.opencontainers.image.created'], undefined);
  }
  assert.equal(digests.size, 1, 'the same artifact each time: nothing of the bad time is kept');
});

test('convert refuses what Docker Model Runner cannot run, and bad flags, with one-line errors', async (t) => {
  const { run, store: root } = await cli(t);
  const dir = await tempDir(t);
  await writeTree(dir, { 'model.onnx': Buffer.alloc(1000, 3), 'config.json': '{}' });
  const store = await LocalStore.open(root);
  await buildModel(store, { contextDir: dir, reference: 'models/onnx:1' });
  store.close();
  const r = await run('convert', 'models/onnx:1', '--format', 'docker', '-t', 'models/onnx:docker');
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^mpk: models\/onnx:1: has no GGUF, safetensors or DDUF weight.*Hint: /);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  const f = await run('convert', 'models/onnx:1', '--format', 'kitops', '-t', 'x:1');
  assert.equal(f.code, 2);
  assert.match(f.stderr, /--format "kitops".*Hint: use --format docker or --format modelpack/);
  assert.equal((await run('convert', 'models/nope:1', '--format', 'docker', '-t', 'x:1')).code, 3);
});
