/**
 * classifyGgufFiles on real stores: what each GGUF weight is for, by Ollama's and Docker Model
 * Runner's media types and by GGUF headers (general.type, general.architecture, split.*), split
 * sets put together in split.no order (only the first shard names the model), the first model
 * of the manifest chosen, others noted; headers read from the blobs in place.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { GgufKv } from '../formats/gguf.js';
import { DOCKER_AI_CONFIG_V01, DOCKER_AI_GGUF, DOCKER_AI_LICENSE, DOCKER_AI_MMPROJ } from '../interop/docker-ai.js';
import { loadModel } from '../interop/load-model.js';
import { OLLAMA_ADAPTER, OLLAMA_CONFIG, OLLAMA_MODEL, OLLAMA_PROJECTOR, OLLAMA_SYSTEM } from '../interop/ollama.js';
import { DOCKER_MANIFEST, OCI_MANIFEST } from '../oci/media-types.js';
import { LocalStore } from '../store/store.js';
import { mpk } from '../test-support/cli.js';
import { kv, writeGguf } from '../test-support/gguf-writer.js';
import { descOf, handMade, storeHandMade } from '../test-support/interop.js';
import { writeTinyLlamaSplit } from '../test-support/tiny-llama-split.js';
import { MIXED_TENSORS, writeSafetensors } from '../test-support/safetensors-writer.js';
import { rejectsWith } from '../test-support/rejects-with.js';
import { tempDir } from '../test-support/tmp.js';
import { classifyGgufFiles, type GgufRoles } from './gguf-roles.js';

interface Fixture {
  base: string;
  store: LocalStore;
  build: (ref: string, dirOrFile: string) => Promise<void>;
}

async function fixture(t: TestContext): Promise<Fixture> {
  const base = await tempDir(t, 'mpk-roles-');
  const root = join(base, 'store');
  const env = { MPK_HOME: root, DOCKER_CONFIG: join(base, 'docker') };
  const store = await LocalStore.open(root);
  t.after(() => store.close());
  return {
    base,
    store,
    build: async (ref, p) => {
      const r = await mpk(env, base, 'build', '-t', ref, p);
      assert.equal(r.code, 0, r.stderr);
    },
  };
}

/** A small GGUF (one F32 tensor) with these keys. */
async function gguf(path: string, metadata: Array<[string, GgufKv]>, tensors = 1): Promise<Buffer> {
  await writeGguf(path, { metadata, tensors: Array.from({ length: tensors }, (_, i) => ({ name: `t${i}`, dims: [32], type: 0 })) }, { data: 'sparse' });
  return readFile(path);
}

const llama = (name: string): Array<[string, GgufKv]> => [
  ['general.architecture', kv.str('llama')],
  ['general.name', kv.str(name)],
];

async function roles(store: LocalStore, ref: string, weight?: string): Promise<GgufRoles> {
  return classifyGgufFiles(store, await loadModel(store, ref), weight);
}

/** Paths of a role, for compact assertions. */
const paths = (gs: readonly { file: { path: string } }[] | undefined): string[] | undefined => gs?.map((g) => g.file.path);

test("Ollama: adapter and projector by media type, whatever their headers say; runtime layers are not weights", async (t) => {
  const f = await fixture(t);
  const model = await gguf(join(f.base, 'm.gguf'), llama('m'));
  const adapter = await gguf(join(f.base, 'a.gguf'), llama('plain header'), 2); // no general.type=adapter
  const projector = await gguf(join(f.base, 'p.gguf'), llama('plain header too'), 3); // not clip
  const system = Buffer.from('be brief');
  const layers = [descOf(OLLAMA_MODEL, model), descOf(OLLAMA_ADAPTER, adapter), descOf(OLLAMA_PROJECTOR, projector), descOf(OLLAMA_SYSTEM, system)];
  const config = Buffer.from(JSON.stringify({ model_format: 'gguf', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) } }));
  const doc = { schemaVersion: 2, mediaType: DOCKER_MANIFEST, config: descOf(OLLAMA_CONFIG, config), layers };
  await storeHandMade(f.store, 'ollama/m:latest', handMade(DOCKER_MANIFEST, doc, [config, model, adapter, projector, system]));
  const r = await roles(f.store, 'ollama/m:latest');
  assert.deepEqual(paths(r.main), ['model.gguf']);
  assert.deepEqual(paths(r.adapters), ['adapter.gguf']);
  assert.equal(r.projector?.file.path, 'mmproj.gguf');
  assert.deepEqual(r.unused, []);
});

test('Docker Model Runner: the projector by its mmproj media type; a second projector is unused; the license is not looked at', async (t) => {
  const f = await fixture(t);
  const model = await gguf(join(f.base, 'm.gguf'), llama('m'));
  const vision = await gguf(join(f.base, 'v.gguf'), llama('not clip'), 2);
  const second = await gguf(join(f.base, 's.gguf'), [['general.type', kv.str('mmproj')]], 3);
  const license = Buffer.from('MIT\n');
  const at = (p: string) => ({ 'org.cncf.model.filepath': p });
  const layers = [
    descOf(DOCKER_AI_GGUF, model, at('model.gguf')),
    descOf(DOCKER_AI_MMPROJ, vision, at('vision.gguf')),
    descOf(DOCKER_AI_GGUF, second, at('extra.gguf')),
    descOf(DOCKER_AI_LICENSE, license, at('LICENSE')),
  ];
  const config = Buffer.from(JSON.stringify({ config: { format: 'gguf' }, descriptor: {}, rootfs: { type: 'rootfs', diff_ids: layers.map((l) => l.digest) } }));
  const doc = { schemaVersion: 2, mediaType: OCI_MANIFEST, config: descOf(DOCKER_AI_CONFIG_V01, config), layers };
  await storeHandMade(f.store, 'ai/m:1', handMade(OCI_MANIFEST, doc, [config, model, vision, second, license]));
  const r = await roles(f.store, 'ai/m:1');
  assert.deepEqual(paths(r.main), ['model.gguf']);
  assert.equal(r.projector?.file.path, 'vision.gguf');
  assert.deepEqual(r.unused.map((u) => [u.file.path, u.why]), [['extra.gguf', 'a second projector']]);
  assert.deepEqual(r.adapters, []);
});

test('ModelPack, by header: general.type adapter and mmproj; a safetensors weight is not a GGUF and is left out', async (t) => {
  const f = await fixture(t);
  const d = join(f.base, 'm');
  await mkdir(d);
  await gguf(join(d, 'model.gguf'), llama('m'));
  await gguf(join(d, 'lora.gguf'), [['general.architecture', kv.str('llama')], ['general.type', kv.str('adapter')], ['adapter.type', kv.str('lora')]], 2);
  await gguf(join(d, 'vision.gguf'), [['general.architecture', kv.str('siglip')], ['general.type', kv.str('mmproj')]], 3);
  await writeSafetensors(join(d, 'other.safetensors'), MIXED_TENSORS, { data: 'pattern' });
  await f.build('models/m:1', d);
  const r = await roles(f.store, 'models/m:1');
  assert.deepEqual(paths(r.main), ['model.gguf']);
  assert.deepEqual(paths(r.adapters), ['lora.gguf']);
  assert.equal(r.projector?.file.path, 'vision.gguf');
  assert.deepEqual(r.unused, [], 'the safetensors file is not a GGUF: not a role, not a note');
});

test('split set: put together by split.no though only the first shard names the model; a weight path of any shard picks its set', async (t) => {
  const f = await fixture(t);
  const d = join(f.base, 'm');
  await mkdir(d);
  const [s1, s2] = await writeTinyLlamaSplit(d, { shards: 2 });
  await rename(s1!, join(d, 'z.gguf'));
  await rename(s2!, join(d, 'y.gguf'));
  await f.build('models/s:1', d);
  const r = await roles(f.store, 'models/s:1');
  assert.deepEqual(paths(r.main), ['z.gguf', 'y.gguf'], 'split.no order, not name order');
  assert.deepEqual(r.unused, []);
  assert.deepEqual(paths((await roles(f.store, 'models/s:1', 'y.gguf')).main), ['z.gguf', 'y.gguf']);
});

test('two split models of the same shape (2 shards, 21 tensors) in one artifact: two sets, by shard name; the first runs', async (t) => {
  const f = await fixture(t);
  const d = join(f.base, 'm');
  await mkdir(d);
  await writeTinyLlamaSplit(d, { shards: 2, prefix: 'f32', fileType: 'F32' });
  await writeTinyLlamaSplit(d, { shards: 2, prefix: 'q8' });
  await f.build('models/s:1', d);
  const r = await roles(f.store, 'models/s:1');
  assert.deepEqual(paths(r.main), ['f32-00001-of-00002.gguf', 'f32-00002-of-00002.gguf']);
  assert.deepEqual(
    r.unused.map((u) => [u.file.path, u.why]),
    [
      ['q8-00001-of-00002.gguf', 'another model file; choose it with --weight q8-00001-of-00002.gguf'],
      ['q8-00002-of-00002.gguf', 'another model file; choose it with --weight q8-00001-of-00002.gguf'],
    ],
  );
  assert.deepEqual(paths((await roles(f.store, 'models/s:1', 'q8-00002-of-00002.gguf')).main), ['q8-00001-of-00002.gguf', 'q8-00002-of-00002.gguf']);
});

test('the first model in the manifest runs, be it a split set before a single file', async (t) => {
  const f = await fixture(t);
  const d = join(f.base, 'm');
  await mkdir(d);
  await writeTinyLlamaSplit(d, { shards: 2, prefix: 'big' });
  await gguf(join(d, 'small.gguf'), llama('small'));
  await f.build('models/s:1', d);
  const m = await loadModel(f.store, 'models/s:1');
  assert.deepEqual(m.view.files.map((x) => x.path), ['big-00001-of-00002.gguf', 'big-00002-of-00002.gguf', 'small.gguf'], 'the manifest order');
  const r = await classifyGgufFiles(f.store, m);
  assert.deepEqual(paths(r.main), ['big-00001-of-00002.gguf', 'big-00002-of-00002.gguf']);
  assert.deepEqual(paths(r.unused), ['small.gguf']);
});

test('a shard without the rest of its set makes the manifest invalid: INVALID_MANIFEST', async (t) => {
  const f = await fixture(t);
  const d = join(f.base, 'm');
  await mkdir(d);
  await writeTinyLlamaSplit(d, { shards: 2 });
  const other = join(f.base, 'other');
  await mkdir(other);
  const [first] = await writeTinyLlamaSplit(other, { shards: 2, name: 'another model' });
  await rename(first!, join(d, 'stray.gguf'));
  await f.build('models/s:1', d);
  const e = await rejectsWith(roles(f.store, 'models/s:1'), 'INVALID_MANIFEST', 'models/s:1');
  assert.match(e.message, /a GGUF split set of 2 files has/);
  assert.match(e.message, /stray\.gguf/);
});

test('a weight layer missing from the store is NOT_FOUND with a pull hint', async (t) => {
  const f = await fixture(t);
  const d = join(f.base, 'm');
  await mkdir(d);
  await gguf(join(d, 'model.gguf'), llama('m'));
  await f.build('models/m:1', d);
  const m = await loadModel(f.store, 'models/m:1');
  await rm(f.store.blobs.path(m.view.files[0]!.layer.digest));
  const e = await rejectsWith(classifyGgufFiles(f.store, m), 'NOT_FOUND', 'models/m:1');
  assert.match(e.message, /model\.gguf/);
  assert.match(e.hint ?? '', /mpk pull models\/m:1/);
});
