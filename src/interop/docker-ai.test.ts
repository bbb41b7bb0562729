/**
 * Docker Model Runner artifacts, written by hand as DMR's builders write them (peer-formats.md §1),
 * pushed to a real docker-registry and pulled with `mpk pull`; then ls, inspect and extract.
 */
import { test, type TestContext } from 'node:test';
import { spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pack as tarPack } from 'tar-stream';
import { OCI_MANIFEST } from '../oci/media-types.js';
import { fileRegistry } from '../test-support/registry-peer.js';
import { tempDir } from '../test-support/tmp.js';
import { cli, descOf, fakeGguf, handMade, ok, pushHandMade, sha, type HandMade } from '../test-support/interop.js';
import {
  DOCKER_AI_CHAT_TEMPLATE,
  DOCKER_AI_CONFIG_V01,
  DOCKER_AI_CONFIG_V02,
  DOCKER_AI_GGUF,
  DOCKER_AI_LICENSE,
  DOCKER_AI_MMPROJ,
  DOCKER_AI_MODEL_FILE,
  DOCKER_AI_SAFETENSORS,
  DOCKER_AI_VLLM_CONFIG_TAR,
  dockerAiFallbackNames,
} from './docker-ai.js';

/** The file's registry, started on first use; null when the test was skipped for lack of it. */
const registry = fileRegistry();

/** Layer annotations as DMR's current builder writes them (Go's field order, RFC 3339 nano times). */
function annotated(path: string, bytes: Buffer, mode = 0o644, mtime = '2025-04-30T12:00:00.123456789+02:00'): Record<string, string> {
  const name = path.split('/').pop()!;
  return {
    'org.cncf.model.file.mediatype.untested': 'false',
    'org.cncf.model.file.metadata+json': JSON.stringify({ name, mode, uid: 0, gid: 0, size: bytes.length, mtime, typeflag: 0 }),
    'org.cncf.model.filepath': path,
  };
}

/** A DMR artifact: an OCI manifest (no artifactType) over a config and raw layers. */
function dmrArtifact(configMediaType: string, config: Record<string, unknown>, layers: { mediaType: string; bytes: Buffer; annotations?: Record<string, string> }[]): HandMade {
  const layerDescs = layers.map((l) => descOf(l.mediaType, l.bytes, l.annotations));
  const configBytes = Buffer.from(JSON.stringify({ ...config, rootfs: { type: 'rootfs', diff_ids: layerDescs.map((d) => d.digest) } }));
  const doc = { schemaVersion: 2, mediaType: OCI_MANIFEST, config: descOf(configMediaType, configBytes), layers: layerDescs };
  return handMade(OCI_MANIFEST, doc, [configBytes, ...layers.map((l) => l.bytes)]);
}

async function filesUnder(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await filesUnder(dir, rel)));
    else out.push(rel);
  }
  return out.sort();
}

async function assertTree(dir: string, want: Record<string, Buffer>): Promise<void> {
  assert.deepEqual(await filesUnder(dir), Object.keys(want).sort());
  for (const [p, bytes] of Object.entries(want)) assert.equal(sha(await readFile(join(dir, p))), sha(bytes), p);
}

test('DMR v0.1 GGUF (current builder, annotated): pull, ls, inspect, extract give the same files', async (t) => {
  const reg = await registry(t);
  if (!reg) return;
  const gguf = fakeGguf(1, 200_000);
  const license = Buffer.from('Apache License\nVersion 2.0, January 2004\n');
  const mmproj = fakeGguf(2, 30_000);
  const template = Buffer.from('{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}');
  const a = dmrArtifact(
    DOCKER_AI_CONFIG_V01,
    {
      config: { format: 'gguf', quantization: 'IQ2_XXS/Q4_K_M', parameters: '361.82M', architecture: 'llama', size: '256.35MiB', gguf: { 'general.architecture': 'llama' }, context_size: 8192 },
      descriptor: { created: '2025-05-01T10:00:00.123456789Z' },
    },
    [
      { mediaType: DOCKER_AI_GGUF, bytes: gguf, annotations: annotated('SmolLM2-360M-Instruct-Q4_K_M.gguf', gguf) },
      { mediaType: DOCKER_AI_LICENSE, bytes: license, annotations: annotated('LICENSE.txt', license, 0o600) },
      { mediaType: DOCKER_AI_MMPROJ, bytes: mmproj, annotations: annotated('mmproj-f16.gguf', mmproj) },
      { mediaType: DOCKER_AI_CHAT_TEMPLATE, bytes: template, annotations: annotated('template.jinja', template) },
    ],
  );
  const ref = `${reg.host}/ai/smollm2:360M-Q4_K_M`;
  await pushHandMade(t, reg.host, 'ai/smollm2', '360M-Q4_K_M', a);
  const { run } = await cli(t);
  const pulled = ok(await run('pull', ref, '--json'));
  assert.equal(pulled.digest, a.manifestDesc.digest);

  const ls = ok<Record<string, unknown>[]>(await run('ls', '--json'));
  assert.equal(ls.length, 1);
  assert.deepEqual(
    { kind: ls[0]!.kind, format: ls[0]!.format, paramSize: ls[0]!.paramSize, quantization: ls[0]!.quantization, architecture: ls[0]!.architecture },
    { kind: 'docker-ai', format: 'gguf', paramSize: '361.82M', quantization: 'IQ2_XXS/Q4_K_M', architecture: 'llama' },
  );
  const insp = ok<{ files: { path: string; kind: string; encoding: string }[]; artifactType: string }>(await run('inspect', ref, '--json'));
  assert.equal(insp.artifactType, DOCKER_AI_CONFIG_V01);
  assert.deepEqual(
    insp.files.map((f) => [f.path, f.kind, f.encoding]),
    [
      ['SmolLM2-360M-Instruct-Q4_K_M.gguf', 'weight', 'raw'],
      ['LICENSE.txt', 'doc', 'raw'],
      ['mmproj-f16.gguf', 'weight', 'raw'],
      ['template.jinja', 'config', 'raw'],
    ],
  );
  const text = (await run('inspect', ref)).stdout;
  assert.match(text, /Kind:\s+docker-ai/);
  assert.match(text, /Architecture:\s+llama/);
  assert.match(text, /Quantization:\s+IQ2_XXS\/Q4_K_M/);

  const out = await tempDir(t);
  ok(await run('extract', ref, out, '--json'));
  await assertTree(out, { 'SmolLM2-360M-Instruct-Q4_K_M.gguf': gguf, 'LICENSE.txt': license, 'mmproj-f16.gguf': mmproj, 'template.jinja': template });
  const st = await stat(join(out, 'LICENSE.txt'));
  assert.equal(st.mode & 0o777, 0o600, 'mode from the file metadata');
  assert.equal(Math.round(st.mtimeMs), Date.parse('2025-04-30T10:00:00.123Z'), 'mtime from the file metadata');

  // The weights alone, and garbage collection keeps everything a DMR manifest reaches.
  const w = await tempDir(t);
  ok(await run('extract', ref, w, '--type', 'weight', '--json'));
  assert.deepEqual(await filesUnder(w), ['SmolLM2-360M-Instruct-Q4_K_M.gguf', 'mmproj-f16.gguf']);
  assert.equal((await run('prune')).code, 0);
  assert.equal((await run('verify')).code, 0, 'prune removed nothing the model needs');
});

test("DMR v0.1 from the archived builder (no layer annotations): files get DMR's bundle names", async (t) => {
  const reg = await registry(t);
  if (!reg) return;
  const shard1 = fakeGguf(3, 90_000);
  const shard2 = fakeGguf(4, 50_000);
  const license = Buffer.from('MIT License\n');
  const template = Buffer.from('{{ messages }}');
  const a = dmrArtifact(DOCKER_AI_CONFIG_V01, { config: { format: 'gguf', quantization: 'Q8_0', parameters: '1.24B', architecture: 'llama', size: '1.22GiB' } }, [
    { mediaType: DOCKER_AI_GGUF, bytes: shard1 },
    { mediaType: DOCKER_AI_GGUF, bytes: shard2 },
    { mediaType: DOCKER_AI_LICENSE, bytes: license },
    { mediaType: DOCKER_AI_CHAT_TEMPLATE, bytes: template },
  ]);
  await pushHandMade(t, reg.host, 'ai/llama3.2', '1B-Q8_0', a);
  const { run } = await cli(t);
  const ref = `${reg.host}/ai/llama3.2:1B-Q8_0`;
  const out = await tempDir(t);
  const pulled = ok(await run('pull', ref, '--extract', out, '--json'));
  assert.equal(pulled.files, 4);
  await assertTree(out, { 'model-00001-of-00002.gguf': shard1, 'model-00002-of-00002.gguf': shard2, LICENSE: license, 'template.jinja': template });
  const ls = ok<Record<string, unknown>[]>(await run('ls', '--json'));
  assert.equal(ls[0]!.quantization, 'Q8_0');
});

test('DMR v0.2 safetensors directory (one layer per file, nested paths): pull and extract', async (t) => {
  const reg = await registry(t);
  if (!reg) return;
  const files: Record<string, { mediaType: string; bytes: Buffer }> = {
    'model-00001-of-00002.safetensors': { mediaType: DOCKER_AI_SAFETENSORS, bytes: Buffer.alloc(70_000, 1) },
    'model-00002-of-00002.safetensors': { mediaType: DOCKER_AI_SAFETENSORS, bytes: Buffer.alloc(40_000, 2) },
    'config.json': { mediaType: DOCKER_AI_MODEL_FILE, bytes: Buffer.from('{"architectures":["LlamaForCausalLM"],"max_position_embeddings":4096}') },
    'tokenizer/tokenizer.json': { mediaType: DOCKER_AI_MODEL_FILE, bytes: Buffer.from('{"model":{}}') },
    'README.md': { mediaType: DOCKER_AI_MODEL_FILE, bytes: Buffer.from('# A model\n') },
    LICENSE: { mediaType: DOCKER_AI_LICENSE, bytes: Buffer.from('license text\n') },
    'chat_template.jinja': { mediaType: DOCKER_AI_CHAT_TEMPLATE, bytes: Buffer.from('{{ bos_token }}') },
  };
  const a = dmrArtifact(
    DOCKER_AI_CONFIG_V02,
    { config: { format: 'safetensors', quantization: 'BF16', parameters: '1.50B', size: '3.00GB', safetensors: { tensor_count: '2' }, context_size: 4096 }, descriptor: { created: '2025-10-01T00:00:00Z' } },
    Object.entries(files).map(([p, f]) => ({ ...f, annotations: annotated(p, f.bytes) })),
  );
  await pushHandMade(t, reg.host, 'ai/qwen', 'st', a);
  const { run } = await cli(t);
  const ref = `${reg.host}/ai/qwen:st`;
  ok(await run('pull', ref, '--json'));
  const insp = ok<{ kind: string; format: string; files: { path: string; kind: string }[] }>(await run('inspect', ref, '--json'));
  assert.equal(insp.kind, 'docker-ai');
  assert.equal(insp.format, 'safetensors');
  assert.deepEqual(Object.fromEntries(insp.files.map((f) => [f.path, f.kind])), {
    'model-00001-of-00002.safetensors': 'weight',
    'model-00002-of-00002.safetensors': 'weight',
    'config.json': 'config',
    'tokenizer/tokenizer.json': 'config',
    'README.md': 'doc',
    LICENSE: 'doc',
    'chat_template.jinja': 'config',
  });
  const out = await tempDir(t);
  ok(await run('extract', ref, out, '--json'));
  await assertTree(out, Object.fromEntries(Object.entries(files).map(([p, f]) => [p, f.bytes])));
});

test('DMR older safetensors packaging (config files as one vllm.config.tar, no annotations): extract unpacks the tar', async (t) => {
  const reg = await registry(t);
  if (!reg) return;
  const weights = Buffer.alloc(60_000, 7);
  const cfg = Buffer.from('{"model_type":"qwen2"}');
  const tok = Buffer.from('{"added_tokens":[]}');
  const tar = await tarOf({ 'config.json': cfg, 'tokenizer.json': tok });
  const a = dmrArtifact(DOCKER_AI_CONFIG_V01, { config: { format: 'safetensors', quantization: 'BF16', parameters: '494M' } }, [
    { mediaType: DOCKER_AI_SAFETENSORS, bytes: weights },
    { mediaType: DOCKER_AI_VLLM_CONFIG_TAR, bytes: tar },
  ]);
  await pushHandMade(t, reg.host, 'ai/qwen-old', 'v1', a);
  const { run } = await cli(t);
  const out = await tempDir(t);
  ok(await run('pull', `${reg.host}/ai/qwen-old:v1`, '--extract', out, '--json'));
  await assertTree(out, { 'model.safetensors': weights, 'config.json': cfg, 'tokenizer.json': tok });
});

test('fallback names skip names that annotated layers took, and number repeats', () => {
  const d = (mediaType: string, n: number) => ({ mediaType, digest: `sha256:${String(n).repeat(64)}`, size: 1 });
  const names = dockerAiFallbackNames([d(DOCKER_AI_GGUF, 1), d(DOCKER_AI_LICENSE, 2), d(DOCKER_AI_LICENSE, 3), d(DOCKER_AI_MODEL_FILE, 4), d('application/x-unknown', 5)], new Set(['LICENSE']));
  assert.deepEqual(names, ['model.gguf', 'LICENSE-2', 'LICENSE-3', 'file-444444444444', undefined]);
});

test('fallback names for a manifest of 35,000 layers of one type (what 4 MiB holds) come in linear time: ls and inspect stay instant', () => {
  const d = (mediaType: string, n: number) => ({ mediaType, digest: `sha256:${String(n).padStart(64, '0')}`, size: 1 });
  // a name annotated layers took is skipped wherever it falls in the sequence
  assert.deepEqual(dockerAiFallbackNames([1, 2, 3, 4].map((n) => d(DOCKER_AI_LICENSE, n)), new Set(['LICENSE-3'])), ['LICENSE', 'LICENSE-2', 'LICENSE-4', 'LICENSE-5']);
  // In a child with a time limit: the quadratic search this replaces takes minutes here.
  const script = `const { modelView } = await import(${JSON.stringify(new URL('../modelpack/model-view.ts', import.meta.url).href)});
    const layers = (t) => Array.from({ length: 35000 }, (_, i) => ({ mediaType: t, digest: 'sha256:' + i.toString(16).padStart(64, '0'), size: 1 }));
    const config = (t) => ({ mediaType: t, digest: 'sha256:' + 'f'.repeat(64), size: 1 });
    const dmr = modelView({ schemaVersion: 2, config: config(${JSON.stringify(DOCKER_AI_CONFIG_V01)}), layers: layers(${JSON.stringify(DOCKER_AI_LICENSE)}) });
    const oll = modelView({ schemaVersion: 2, config: config('application/vnd.docker.container.image.v1+json'), layers: layers('application/vnd.ollama.image.license') });
    console.log([dmr.format, dmr.files[34999].path, oll.format, oll.files[34999].path].join(' '));`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, `exit ${r.status} ${r.signal ?? ''}: ${r.stderr.slice(-300)}`);
  assert.equal(r.stdout.trim(), 'docker-ai LICENSE-35000 ollama LICENSE-35000');
});

async function tarOf(entries: Record<string, Buffer>): Promise<Buffer> {
  const p = tarPack();
  for (const [name, body] of Object.entries(entries)) p.entry({ name, size: body.length, mode: 0o644, mtime: new Date(0) }, body);
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
