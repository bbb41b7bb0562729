/**
 * resolveRunnable and openModel on real stores built with the CLI (and imported from a fake
 * Ollama models directory, converted to Docker Model Runner), loaded by the real engine: the
 * weight is the store's blob itself; a split GGUF goes through links named as llama.cpp wants and
 * answers as the unsplit model does; adapters, projectors, a second model, formats llama.cpp
 * cannot run; the model's own settings and flags over them.
 */
import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readFile, readlink, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { GgufType, readGgufHeader } from '../formats/gguf.js';
import { loadModel } from '../interop/load-model.js';
import { OLLAMA_CONFIG, OLLAMA_MODEL, OLLAMA_PARAMS, OLLAMA_SYSTEM, OLLAMA_TEMPLATE } from '../interop/ollama.js';
import { digestBytes } from '../oci/digest.js';
import { DOCKER_MANIFEST, OCI_INDEX } from '../oci/media-types.js';
import { LocalStore } from '../store/store.js';
import { mpk } from '../test-support/cli.js';
import { kv, writeGguf } from '../test-support/gguf-writer.js';
import { directChat, importLlamaCpp } from '../test-support/llama.js';
import { writeSafetensors, MIXED_TENSORS } from '../test-support/safetensors-writer.js';
import { writeTinyLlama, writeTinyLora } from '../test-support/tiny-llama.js';
import { writeTinyLlamaSplit } from '../test-support/tiny-llama-split.js';
import { rejectsWith } from '../test-support/rejects-with.js';
import { tempDir } from '../test-support/tmp.js';
import { openModel, type OpenedModel, type OpenModelOptions } from './open-model.js';
import { resolveRunnable } from './runnable.js';

// the tiny model is fastest on one thread (more threads than cores is far slower still)
const THREADS = 1;
const HELLO = [{ role: 'user' as const, content: 'hello' }];
const GREEDY = { temperature: 0, maxTokens: 12 };

interface Fixture {
  root: string;
  store: LocalStore;
  /** The CLI on this store; fails the test when the command fails. */
  run: (...argv: string[]) => Promise<string>;
  /** A fresh directory for model files. */
  dir: (name: string) => Promise<string>;
}

async function fixture(t: TestContext): Promise<Fixture> {
  const base = await tempDir(t, 'mpk-runnable-');
  const root = join(base, 'store');
  const env = { MPK_HOME: root, DOCKER_CONFIG: join(base, 'docker'), PATH: process.env.PATH ?? '' };
  const run = async (...argv: string[]): Promise<string> => {
    const r = await mpk(env, base, ...argv);
    assert.equal(r.code, 0, `mpk ${argv.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  await run('ls'); // creates the store
  const store = await LocalStore.open(root);
  t.after(() => store.close());
  const dir = async (name: string): Promise<string> => {
    const d = join(base, name);
    await mkdir(d, { recursive: true });
    return d;
  };
  return { root, store, run, dir };
}

/** The blob digest of the layer at `path` of a stored model. */
async function layerDigest(store: LocalStore, ref: string, path: string): Promise<string> {
  const m = await loadModel(store, ref);
  const f = m.view.files.find((x) => x.path === path);
  assert.ok(f, `${ref} has no ${path} (it has ${m.view.files.map((x) => x.path).join(', ')})`);
  return f.layer.digest;
}

/** openModel with one thread, closed when the test ends. */
async function open(t: TestContext, f: Fixture, ref: string, o: OpenModelOptions = {}): Promise<OpenedModel> {
  const m = await openModel(f.store, ref, { threads: THREADS, ...o });
  t.after(() => m.close());
  return m;
}

/** The unsplit tiny model's greedy answer to "hello" (seed 1), computed once for the file. */
let baseAnswer: Promise<string> | undefined;
let baseDir: string | undefined;
after(async () => {
  if (baseDir) await rm(baseDir, { recursive: true, force: true });
});
function unsplitAnswer(): Promise<string> {
  baseAnswer ??= (async () => {
    baseDir = await mkdtemp(join(tmpdir(), 'mpk-runnable-base-'));
    const root = join(baseDir, 'store');
    const gguf = join(baseDir, 'tiny.gguf');
    await writeTinyLlama(gguf, { seed: 1 });
    const b = await mpk({ MPK_HOME: root }, baseDir, 'build', '-t', 'models/base:1', gguf);
    assert.equal(b.code, 0, b.stderr);
    const store = await LocalStore.open(root);
    const m = await openModel(store, 'models/base:1', { threads: THREADS });
    try {
      return (await m.model.chat(HELLO, GREEDY)).text;
    } finally {
      await m.close();
      store.close();
    }
  })();
  return baseAnswer;
}

test('single GGUF: load.path is the layer blob itself; weightBytes the file size; no notes, no settings', async (t) => {
  const f = await fixture(t);
  const gguf = join(await f.dir('m'), 'tiny.gguf');
  const { size } = await writeTinyLlama(gguf);
  await f.run('build', '-t', 'models/tiny:1', gguf);
  const r = await resolveRunnable(f.store, 'models/tiny:1');
  const digest = await layerDigest(f.store, 'models/tiny:1', 'tiny.gguf');
  assert.equal(r.load.path, f.store.blobs.path(digest));
  assert.deepEqual(Object.keys(r.load), ['path'], 'no adapters, projector, chat format or context size');
  assert.equal(r.weightBytes, size);
  assert.equal(r.format, 'gguf');
  assert.equal(r.reference, 'models/tiny:1');
  assert.equal(r.digest, (await f.store.resolve('models/tiny:1')).digest);
  assert.deepEqual(r.notes, []);
  assert.deepEqual(r.defaults, {});
  assert.ok((await readFile(r.load.path)).equals(await readFile(gguf)), 'the blob holds the file');
});

test('split GGUF: shards ordered by split.no (not by name), linked under STORE/run, loaded by llama.cpp, answering as the unsplit model', async (t) => {
  const lib = await importLlamaCpp(t);
  const f = await fixture(t);
  const d = await f.dir('split');
  const [s1, s2, s3] = await writeTinyLlamaSplit(d, { shards: 3, seed: 1 });
  // names in the reverse of split.no: c.gguf is shard 1, a.gguf shard 3
  await rename(s1!, join(d, 'c.gguf'));
  await rename(s2!, join(d, 'b.gguf'));
  await rename(s3!, join(d, 'a.gguf'));
  await f.run('build', '-t', 'models/split:1', d);
  const r = await resolveRunnable(f.store, 'models/split:1');
  // the links folder is named by the first shard's blob (one artifact may hold two split models)
  const links = join(f.root, 'run', (await layerDigest(f.store, 'models/split:1', 'c.gguf')).replace(':', '-'));
  assert.equal(r.load.path, join(links, 'model-00001-of-00003.gguf'));
  for (const [i, name] of ['c.gguf', 'b.gguf', 'a.gguf'].entries()) {
    const link = join(links, `model-0000${i + 1}-of-00003.gguf`);
    assert.ok((await lstat(link)).isSymbolicLink(), `${link} is a symbolic link`);
    assert.equal(await readlink(link), f.store.blobs.path(await layerDigest(f.store, 'models/split:1', name)), `shard ${i + 1} → ${name}'s blob`);
  }
  const sizes = await Promise.all(['a.gguf', 'b.gguf', 'c.gguf'].map(async (n) => (await stat(join(d, n))).size));
  assert.equal(r.weightBytes, sizes.reduce((a, b) => a + b, 0));
  assert.deepEqual(r.notes, []);

  // resolved again: the same links, not made anew
  const before = await lstat(links);
  const again = await resolveRunnable(f.store, 'models/split:1');
  assert.equal(again.load.path, r.load.path);
  assert.equal((await lstat(links)).ino, before.ino, 'the links folder is reused');

  if (!lib) return;
  const m = await open(t, f, 'models/split:1');
  const answer = (await m.model.chat(HELLO, GREEDY)).text;
  assert.ok(answer.length > 0);
  assert.equal(answer, await unsplitAnswer(), 'the split model answers as the unsplit one');
});

test('split GGUF with a shard missing from the manifest: INVALID_MANIFEST naming the shards there', async (t) => {
  const f = await fixture(t);
  const d = await f.dir('split');
  const [s1, s2, s3] = await writeTinyLlamaSplit(d, { shards: 3 });
  await rm(s2!);
  await f.run('build', '-t', 'models/split:1', d); // mpk build warns, and stores what it was given
  const e = await rejectsWith(resolveRunnable(f.store, 'models/split:1'), 'INVALID_MANIFEST', 'models/split:1');
  assert.match(e.message, /of 3 files has 2/);
  for (const p of [s1!, s3!]) assert.ok(e.message.includes(p.split('/').pop()!), `${e.message} names ${p}`);
  assert.match(e.hint ?? '', /every shard/);
});

test('LoRA adapter and projector: by GGUF header and file name; the adapter changes the answer; the engine warns about the projector', async (t) => {
  const lib = await importLlamaCpp(t);
  const f = await fixture(t);
  const d = await f.dir('lora');
  await writeTinyLlama(join(d, 'tiny.gguf'), { seed: 1 });
  await writeTinyLora(join(d, 'lora.gguf'));
  await writeGguf(
    join(d, 'mmproj-x.gguf'),
    { metadata: [['general.architecture', kv.str('clip')], ['clip.has_vision_encoder', kv.bool(true)]], tensors: [{ name: 'v.patch_embd.weight', dims: [32], type: 0 }] },
    { data: 'sparse' },
  );
  await f.run('build', '-t', 'models/lora:1', d);
  const r = await resolveRunnable(f.store, 'models/lora:1');
  assert.equal(r.load.path, f.store.blobs.path(await layerDigest(f.store, 'models/lora:1', 'tiny.gguf')));
  assert.deepEqual(r.load.adapters, [{ path: f.store.blobs.path(await layerDigest(f.store, 'models/lora:1', 'lora.gguf')) }]);
  assert.equal(r.load.projector, f.store.blobs.path(await layerDigest(f.store, 'models/lora:1', 'mmproj-x.gguf')));
  const sizes = await Promise.all(['tiny.gguf', 'lora.gguf', 'mmproj-x.gguf'].map(async (n) => (await stat(join(d, n))).size));
  assert.equal(r.weightBytes, sizes.reduce((a, b) => a + b, 0), 'model, adapter and projector');
  assert.deepEqual(r.notes, []);

  if (!lib) return;
  const m = await open(t, f, 'models/lora:1');
  assert.ok(m.model.warnings.some((w) => /projector/.test(w)), `warnings: ${m.model.warnings.join('; ')}`);
  const answer = (await m.model.chat(HELLO, GREEDY)).text;
  assert.ok(answer.length > 0);
  assert.notEqual(answer, await unsplitAnswer(), 'the adapter changes the answer');
});

test('projector by file name alone (mmproj*), and by general.architecture=clip alone', async (t) => {
  const f = await fixture(t);
  const d = await f.dir('proj');
  await writeTinyLlama(join(d, 'tiny.gguf'));
  const gguf = (path: string, arch: string) =>
    writeGguf(path, { metadata: [['general.architecture', kv.str(arch)]], tensors: [{ name: 'v.w', dims: [32], type: 0 }] }, { data: 'sparse' });
  await gguf(join(d, 'mmproj-model-f16.gguf'), 'siglip');
  await f.run('build', '-t', 'models/p:1', d);
  const r = await resolveRunnable(f.store, 'models/p:1');
  assert.equal(r.load.projector, f.store.blobs.path(await layerDigest(f.store, 'models/p:1', 'mmproj-model-f16.gguf')));
  assert.equal(r.load.path, f.store.blobs.path(await layerDigest(f.store, 'models/p:1', 'tiny.gguf')));

  await rm(join(d, 'mmproj-model-f16.gguf'));
  await gguf(join(d, 'vision.gguf'), 'clip');
  await f.run('build', '-t', 'models/p:2', d);
  const r2 = await resolveRunnable(f.store, 'models/p:2');
  assert.equal(r2.load.projector, f.store.blobs.path(await layerDigest(f.store, 'models/p:2', 'vision.gguf')));
  assert.equal(r2.load.path, f.store.blobs.path(await layerDigest(f.store, 'models/p:2', 'tiny.gguf')));
});

test('two GGUF models in one artifact: the first runs, the other is noted; weight picks it; an unknown weight is NOT_FOUND', async (t) => {
  const f = await fixture(t);
  const d = await f.dir('two');
  await writeTinyLlama(join(d, 'a.gguf'), { seed: 1 });
  await writeTinyLlama(join(d, 'b.gguf'), { seed: 2 });
  await f.run('build', '-t', 'models/two:1', d);
  const [a, b] = [await layerDigest(f.store, 'models/two:1', 'a.gguf'), await layerDigest(f.store, 'models/two:1', 'b.gguf')];
  const r = await resolveRunnable(f.store, 'models/two:1');
  assert.equal(r.load.path, f.store.blobs.path(a));
  assert.equal(r.notes.length, 1);
  assert.match(r.notes[0]!, /^b\.gguf is not used .*--weight b\.gguf/);
  assert.equal(r.weightBytes, (await stat(join(d, 'a.gguf'))).size, 'only the model run counts');

  const rb = await resolveRunnable(f.store, 'models/two:1', { weight: 'b.gguf' });
  assert.equal(rb.load.path, f.store.blobs.path(b));
  assert.match(rb.notes.join('\n'), /^a\.gguf is not used .*--weight a\.gguf/);

  const e = await rejectsWith(resolveRunnable(f.store, 'models/two:1', { weight: 'c.gguf' }), 'NOT_FOUND', 'models/two:1');
  assert.match(e.message, /c\.gguf/);
  assert.match(e.hint ?? '', /a\.gguf, b\.gguf/);
});

test('a safetensors model is UNSUPPORTED, naming safetensors, vLLM and mpk extract', async (t) => {
  const f = await fixture(t);
  const d = await f.dir('st');
  await writeSafetensors(join(d, 'model.safetensors'), MIXED_TENSORS, { data: 'pattern' });
  await writeFile(join(d, 'config.json'), JSON.stringify({ model_type: 'llama', torch_dtype: 'bfloat16' }));
  await f.run('build', '-t', 'models/st:1', d);
  const e = await rejectsWith(resolveRunnable(f.store, 'models/st:1'), 'UNSUPPORTED', 'models/st:1');
  assert.match(e.message, /safetensors/);
  assert.match(e.hint ?? '', /vLLM/);
  assert.match(e.hint ?? '', /mpk extract models\/st:1/);
});

/** An Ollama models directory holding `tiny:latest`: the tiny GGUF and the given runtime layers, as Ollama writes them. */
async function ollamaModelsDir(dir: string, gguf: Buffer, extra: Array<[string, string]>): Promise<void> {
  const layers: Array<[string, Buffer]> = [[OLLAMA_MODEL, gguf], ...extra.map(([m, s]): [string, Buffer] => [m, Buffer.from(s)])];
  const descs = layers.map(([mediaType, b]) => ({ mediaType, digest: digestBytes(b), size: b.length }));
  const config = Buffer.from(
    `${JSON.stringify({ model_format: 'gguf', model_family: 'llama', model_families: ['llama'], model_type: '1M', file_type: 'Q8_0', architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: descs.map((x) => x.digest) } })}\n`,
  );
  const manifest = `${JSON.stringify({ schemaVersion: 2, mediaType: DOCKER_MANIFEST, config: { mediaType: OLLAMA_CONFIG, digest: digestBytes(config), size: config.length }, layers: descs })}\n`;
  await mkdir(join(dir, 'blobs'), { recursive: true });
  for (const b of [config, ...layers.map(([, x]) => x)]) await writeFile(join(dir, 'blobs', digestBytes(b).replace(':', '-')), b);
  const mp = join(dir, 'manifests', 'registry.ollama.ai', 'library', 'tiny', 'latest');
  await mkdir(dirname(mp), { recursive: true });
  await writeFile(mp, manifest);
}

const CHATML_GO =
  '{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}{{ if .Prompt }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n{{ end }}<|im_start|>assistant\n{{ .Response }}<|im_end|>\n';

test("Ollama model: params, system and template layers are its defaults; its num_ctx sizes the context; a flag wins", async (t) => {
  const lib = await importLlamaCpp(t);
  const f = await fixture(t);
  const src = await f.dir('src');
  await writeTinyLlama(join(src, 'tiny.gguf'));
  const models = await f.dir('ollama');
  await ollamaModelsDir(models, await readFile(join(src, 'tiny.gguf')), [
    [OLLAMA_TEMPLATE, CHATML_GO],
    [OLLAMA_SYSTEM, 'You are terse.'],
    [OLLAMA_PARAMS, JSON.stringify({ num_ctx: 256, temperature: 0, stop: ['world'] })],
  ]);
  await f.run('import', 'ollama', 'tiny', '--models', models);
  const r = await resolveRunnable(f.store, 'ollama/tiny:latest');
  assert.deepEqual(r.defaults, { contextSize: 256, temperature: 0, stop: ['world'], system: 'You are terse.', chatFormat: { family: 'chatml' } });
  assert.equal(r.load.contextSize, 256);
  assert.deepEqual(r.load.chatFormat, { family: 'chatml' });
  assert.equal(r.load.path, f.store.blobs.path(await layerDigest(f.store, 'ollama/tiny:latest', 'model.gguf')));
  assert.equal(r.weightBytes, (await stat(join(src, 'tiny.gguf'))).size, 'the runtime layers are not weights');

  if (!lib) return;
  const m = await open(t, f, 'ollama/tiny:latest');
  assert.equal(m.model.contextSize, 256, "the model's num_ctx");
  assert.equal(m.settings.temperature, 0);
  assert.deepEqual(m.settings.stop, ['world']);
  const messages = [{ role: 'system' as const, content: m.settings.system! }, ...HELLO];
  const full = (await m.model.chat(messages, { maxTokens: 24, temperature: 0 })).text;
  const stopped = (await m.model.chat(messages, { maxTokens: 24, temperature: 0, stop: m.settings.stop! })).text;
  assert.equal(stopped.trimEnd(), full.split('world')[0]!.trimEnd(), `the model's stop text ends the answer (${JSON.stringify(full)})`);
  const flagged = await open(t, f, 'ollama/tiny:latest', { settings: { contextSize: 512 } });
  assert.equal(flagged.model.contextSize, 512, 'the flag wins over num_ctx');
  assert.equal(flagged.settings.contextSize, 512);
  assert.equal(flagged.settings.system, 'You are terse.', 'the rest stays the model’s');
});

test('Docker Model Runner model (mpk convert): context_size and the chat template layer are its defaults', async (t) => {
  const f = await fixture(t);
  const d = await f.dir('dmr');
  await writeTinyLlama(join(d, 'tiny.gguf'), { contextLength: 512 });
  const template = "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}";
  await writeFile(join(d, 'template.jinja'), template);
  await f.run('build', '-t', 'models/tiny:1', d);
  assert.deepEqual((await resolveRunnable(f.store, 'models/tiny:1')).defaults, {}, 'a ModelPack model has no runtime settings of its own');
  await f.run('convert', 'models/tiny:1', '--format', 'docker', '-t', 'ai/tiny:1');
  const r = await resolveRunnable(f.store, 'ai/tiny:1');
  assert.equal(r.defaults.contextSize, 512, "the config's context_size");
  assert.deepEqual(r.defaults.chatFormat, { jinja: template });
  assert.equal(r.load.contextSize, 512);
  assert.deepEqual(r.load.chatFormat, { jinja: template });
  assert.equal(r.load.path, f.store.blobs.path(await layerDigest(f.store, 'models/tiny:1', 'tiny.gguf')), 'the same blob as the ModelPack model');
});

test('an index: select picks the variant; without one (two variants) it is USAGE; select on one model is USAGE', async (t) => {
  const f = await fixture(t);
  const d = await f.dir('idx');
  await writeTinyLlama(join(d, 'q8.gguf'));
  await writeTinyLlama(join(d, 'f32.gguf'), { fileType: 'F32' });
  await f.run('build', '-t', 'models/tiny:q8', join(d, 'q8.gguf'));
  await f.run('build', '-t', 'models/tiny:f32', join(d, 'f32.gguf'));
  const q8 = await f.store.resolve('models/tiny:q8');
  const f32 = await f.store.resolve('models/tiny:f32');
  const variant = (desc: typeof q8, q: string) => ({ mediaType: desc.mediaType, digest: desc.digest, size: desc.size, annotations: { 'org.cncf.model.quantization': q } });
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [variant(q8, 'Q8_0'), variant(f32, 'F32')] }));
  const desc = { mediaType: OCI_INDEX, digest: digestBytes(index), size: index.length };
  await f.store.push(desc, index);
  await f.store.tag(desc, 'models/tiny:all');

  const r = await resolveRunnable(f.store, 'models/tiny:all', { select: { variant: 'F32' } });
  assert.equal(r.digest, f32.digest);
  assert.equal(r.load.path, f.store.blobs.path(await layerDigest(f.store, 'models/tiny:f32', 'f32.gguf')));
  assert.equal((await resolveRunnable(f.store, 'models/tiny:all', { select: { variant: 'q8_0' } })).digest, q8.digest);
  await rejectsWith(resolveRunnable(f.store, 'models/tiny:all'), 'USAGE', 'models/tiny:all');
  await rejectsWith(resolveRunnable(f.store, 'models/tiny:q8', { select: { variant: 'F32' } }), 'USAGE', 'models/tiny:q8');
  await rejectsWith(resolveRunnable(f.store, 'models/tiny:all', { select: { variant: 'Q4_K_M' } }), 'NOT_FOUND', 'models/tiny:all');
});

test('writeTinyLlamaSplit: split keys typed as gguf-split writes them; llama.cpp loads the set by its first shard and answers as the unsplit model', async (t) => {
  const d = await tempDir(t);
  const paths = await writeTinyLlamaSplit(d, { shards: 2 });
  assert.deepEqual(paths, [join(d, 'tiny-00001-of-00002.gguf'), join(d, 'tiny-00002-of-00002.gguf')]);
  const [h1, h2] = [await readGgufHeader(paths[0]!), await readGgufHeader(paths[1]!)];
  assert.deepEqual(h1.metadata.get('split.no'), { type: GgufType.UINT16, value: 0 });
  assert.deepEqual(h2.metadata.get('split.no'), { type: GgufType.UINT16, value: 1 });
  assert.deepEqual(h2.metadata.get('split.count'), { type: GgufType.UINT16, value: 2 });
  assert.deepEqual(h2.metadata.get('split.tensors.count'), { type: GgufType.INT32, value: h1.tensorCount + h2.tensorCount });
  assert.equal(h1.tensorCount + h2.tensorCount, 21);
  assert.equal(h2.metadata.size, 3, 'later shards hold the split keys only');
  assert.equal(h1.metadata.get('general.architecture')?.value, 'llama');
  assert.equal(h2.tensors[0]!.offset, 0, 'tensor data offsets start again in each file');

  const lib = await importLlamaCpp(t);
  if (!lib) return;
  const direct = await directChat(lib, paths[0]!, [{ user: 'hello' }], GREEDY.maxTokens);
  assert.equal(direct, await unsplitAnswer());
});
