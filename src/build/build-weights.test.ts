/**
 * Builds that read the weights' headers: one GGUF file as the build context, the config fields and
 * the GGUF metadata annotation, determinism, the weights cache, a Modelfile the weights contradict,
 * a corrupt GGUF; and `mpk inspect` showing it all.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, readFile, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildModel, type BuildOptions } from './build-model.js';
import { LocalStore } from '../store/store.js';
import { parseModelfile } from '../modelfile/parse.js';
import { ANNOTATION_GGUF_METADATA } from '../oci/media-types.js';
import { kv, sampleModel, writeGguf } from '../test-support/gguf-writer.js';
import { mpk } from '../test-support/cli.js';
import { assertValid, validators } from '../test-support/schemas.js';
import { tempDir, writeTree } from '../test-support/tmp.js';

type T = Parameters<typeof tempDir>[0];

async function build(t: T, opts: Omit<BuildOptions, 'reference'> & { reference?: string }, storeRoot?: string) {
  const store = await LocalStore.open(storeRoot ?? (await tempDir(t)));
  const warnings: string[] = [];
  try {
    const r = await buildModel(store, { reference: 'models/tiny:v1', onWarning: (w) => warnings.push(w), ...opts });
    const manifest = JSON.parse((await store.blobs.read(r.manifest, 1 << 22)).toString());
    const config = JSON.parse((await store.blobs.read(r.config, 1 << 20)).toString());
    return { r, manifest, config, warnings };
  } finally {
    store.close();
  }
}

async function ggufDir(t: T): Promise<{ dir: string; file: string }> {
  const dir = await tempDir(t);
  const file = join(dir, 'tiny.gguf');
  await writeGguf(file, sampleModel()); // llama, Q4_K_M, context 4096, 1.47M parameters, 300 tokens
  await writeFile(join(dir, 'README.md'), '# not packaged with a one-file build\n');
  return { dir, file };
}

test('one .gguf file as the build context: one weight layer, the config filled from its header, deterministic', async (t) => {
  const { dir, file } = await ggufDir(t);
  const { r, manifest, config, warnings } = await build(t, { contextDir: file });
  assert.deepEqual(warnings, []);
  assertValid(validators().manifest, manifest, 'manifest');
  assertValid(validators().configV007, config, 'config (v0.0.7)');
  assertValid(validators().configMain, config, 'config (main)');
  assert.equal(manifest.layers.length, 1);
  assert.equal(manifest.layers[0].mediaType, 'application/vnd.cncf.model.weight.v1.raw');
  assert.equal(manifest.layers[0].annotations['org.cncf.model.filepath'], 'tiny.gguf');
  assert.deepEqual(config.descriptor, { name: 'tiny', family: 'llama' });
  assert.deepEqual(config.config, { architecture: 'llama', format: 'gguf', paramSize: '1.47M', quantization: 'Q4_K_M' });
  const md = JSON.parse(manifest.annotations[ANNOTATION_GGUF_METADATA]);
  assert.equal(md['general.architecture'], 'llama');
  assert.equal(md['llama.context_length'], 4096);
  assert.deepEqual(md['tokenizer.ggml.tokens'], { type: 'array', elementType: 'string', length: 300 });
  assert.equal(r.headersRead, 1);
  assert.equal(r.weights?.contextLength, 4096);

  // Another copy elsewhere, with another mtime, into another store: the same digest.
  const other = join(await tempDir(t), 'elsewhere', 'tiny.gguf');
  await mkdir(join(other, '..'), { recursive: true });
  await copyFile(file, other);
  await utimes(other, new Date('2001-02-03'), new Date('2001-02-03'));
  assert.equal((await build(t, { contextDir: other })).r.manifest.digest, r.manifest.digest);

  // The same store again: no file and no header is read (the digest and weights caches).
  const storeRoot = await tempDir(t);
  const first = await build(t, { contextDir: file }, storeRoot);
  const again = await build(t, { contextDir: file }, storeRoot);
  assert.deepEqual([again.r.filesRead, again.r.headersRead, again.r.manifest.digest], [0, 0, r.manifest.digest]);
  assert.equal(again.r.weights?.paramSize, '1.47M', 'the cached description');
  assert.equal(first.r.headersRead, 1);
  assert.equal((await build(t, { contextDir: file, noCache: true }, storeRoot)).r.headersRead, 1, '--no-cache rereads');
  await writeGguf(file, sampleModel({ fileType: 7, types: { weight: 8, norm: 0, output: 8 } })); // now Q8_0
  const changed = await build(t, { contextDir: file }, storeRoot);
  assert.deepEqual([changed.r.headersRead, changed.config.config.quantization], [1, 'Q8_0']);

  // A link named on the command line is packaged under its own name, wherever it points.
  const linkDir = await tempDir(t);
  await symlink(join(dir, 'tiny.gguf'), join(linkDir, 'renamed.gguf'));
  const linked = await build(t, { contextDir: join(linkDir, 'renamed.gguf') });
  assert.equal(linked.manifest.layers[0].annotations['org.cncf.model.filepath'], 'renamed.gguf');
});

test('a Modelfile value the weights contradict: kept, with a warning naming both; fields it leaves out stay out', async (t) => {
  const { dir } = await ggufDir(t);
  const modelfile = parseModelfile('NAME tiny\nQUANTIZATION Q8_0\nPRECISION bf16\nMODEL tiny.gguf\n');
  const { config, manifest, warnings } = await build(t, { contextDir: dir, modelfile });
  assert.deepEqual(warnings, ['Modelfile: QUANTIZATION Q8_0 contradicts the weights: tiny.gguf says Q4_K_M; keeping Q8_0']);
  assert.deepEqual(config.config, { precision: 'bf16', quantization: 'Q8_0' });
  assert.ok(manifest.annotations[ANNOTATION_GGUF_METADATA], 'the header metadata is recorded all the same');
  // The same through the CLI: one warning line on stderr, exit 0.
  await writeFile(join(dir, 'Modelfile'), 'QUANTIZATION Q8_0\nMODEL tiny.gguf\n');
  const home = await tempDir(t);
  const b = await mpk({ MPK_HOME: home }, dir, 'build', '-t', 'models/tiny:q8', '.');
  assert.equal(b.code, 0, b.stderr);
  assert.equal(b.stderr, `mpk: created a new store at ${home}\nmpk: warning: Modelfile: QUANTIZATION Q8_0 contradicts the weights: tiny.gguf says Q4_K_M; keeping Q8_0\n`);
});

test('a corrupt GGUF in a directory: the build succeeds with a warning naming the file; nothing is inferred from it', async (t) => {
  const { dir, file } = await ggufDir(t);
  const bytes = await readFile(file);
  await writeFile(file, bytes.subarray(0, 200)); // truncated in the middle of the metadata
  const { config, manifest, warnings } = await build(t, { contextDir: dir });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /^tiny\.gguf: not a valid GGUF file at byte 24: the header claims 15 metadata keys, more than the remaining 176 bytes .*\(packaged as it is; nothing is inferred from it\)$/);
  assert.deepEqual(config.config, { format: 'gguf' }, 'FORMAT from the name');
  assert.equal(manifest.annotations, undefined);
  assert.deepEqual(manifest.layers.map((l: { annotations: Record<string, string> }) => l.annotations['org.cncf.model.filepath']), ['tiny.gguf', 'README.md']);
});

test('corrupt weights of every format: each named in a warning, packaged byte for byte, nothing inferred from it', async (t) => {
  // One corrupt GGUF named on the command line: packaged alone, FORMAT from its name.
  const { file } = await ggufDir(t);
  await writeFile(file, (await readFile(file)).subarray(0, 100));
  const one = await build(t, { contextDir: file });
  assert.equal(one.warnings.length, 1);
  assert.match(one.warnings[0]!, /^tiny\.gguf: not a valid GGUF file .*\(packaged as it is; nothing is inferred from it\)$/);
  assert.deepEqual(one.config.config, { format: 'gguf' });
  assert.equal(one.manifest.layers[0].size, 100);

  // A directory: a truncated safetensors file, an index that names a missing shard, a file that is not ONNX.
  const dir = await tempDir(t);
  await writeTree(dir, {
    'model.safetensors': Buffer.concat([Buffer.from([200, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{"w":')]),
    'model.onnx': Buffer.alloc(2000, 0xff),
    'config.json': '{"model_type": "llama"}',
  });
  const many = await build(t, { contextDir: dir });
  assert.equal(many.warnings.length, 3, many.warnings.join('\n'));
  assert.match(many.warnings[0]!, /^weights in several formats: onnx \(1 file, 2\.0 KB\), safetensors \(1 file, 13 B\)/);
  assert.match(many.warnings.join('\n'), /^model\.onnx: not a valid ONNX model .*\(packaged as it is; nothing is inferred from it\)$/m);
  assert.match(many.warnings.join('\n'), /^model\.safetensors: not a valid safetensors file: header length 200 exceeds the file size .*\(packaged as it is; nothing is inferred from it\)$/m);
  assert.deepEqual(many.config.config, { format: 'onnx' }, 'FORMAT from the names (the most bytes), nothing else');
  assert.equal(many.config.descriptor.family, 'llama', 'config.json still read');
  assert.deepEqual(many.manifest.layers.map((l: { annotations: Record<string, string> }) => l.annotations['org.cncf.model.filepath']).sort(), ['config.json', 'model.onnx', 'model.safetensors']);
  await writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { w: 'model-00002-of-00002.safetensors' } }));
  const indexed = await build(t, { contextDir: dir });
  assert.match(indexed.warnings.join('\n'), /model\.safetensors\.index\.json: weight_map names shard "model-00002-of-00002\.safetensors", which does not exist \(every \.safetensors file beside it is counted instead\)/);
});

test('a GGUF header of 30,000 keys: the build packages it (the metadata annotation stays bounded, the manifest under 4 MiB)', async (t) => {
  const file = join(await tempDir(t), 'many.gguf');
  const spec = sampleModel();
  spec.metadata = [...spec.metadata!, ...Array.from({ length: 30_000 }, (_, i): [string, ReturnType<typeof kv.u32>] => [`x.${i}.${'k'.repeat(120)}`, kv.u32(i)])];
  await writeGguf(file, spec);
  const { r, manifest, warnings } = await build(t, { contextDir: file });
  assert.deepEqual(warnings, []);
  assert.ok(r.manifest.size < 1024 * 1024, `${r.manifest.size} bytes`);
  assert.equal(JSON.parse(manifest.annotations[ANNOTATION_GGUF_METADATA])['general.architecture'], 'llama');
});

test('mpk modelfile generate FILE, mpk build FILE, and mpk inspect (text and --json) show what the header says', async (t) => {
  const { dir } = await ggufDir(t);
  const env = { MPK_HOME: await tempDir(t) };
  const gen = await mpk(env, dir, 'modelfile', 'generate', 'tiny.gguf');
  assert.equal(gen.code, 0, gen.stderr);
  assert.match(gen.stdout, /\nNAME tiny\nARCH llama\nFAMILY llama\nFORMAT gguf\nPARAMSIZE 1\.47M\nQUANTIZATION Q4_K_M\n\n# Model weights\nMODEL tiny\.gguf\n$/);
  const b = await mpk(env, dir, 'build', '-t', 'models/tiny:v1', 'tiny.gguf');
  assert.equal(b.code, 0, b.stderr);
  assert.equal(b.stderr, `mpk: created a new store at ${env.MPK_HOME}\n`, 'the first command on a new store says so, nothing else');
  const text = (await mpk(env, dir, 'inspect', 'models/tiny:v1')).stdout;
  for (const re of [/^Architecture:\s+llama$/m, /^Format:\s+gguf$/m, /^Parameters:\s+1\.47M$/m, /^Quantization:\s+Q4_K_M$/m, /^Context size:\s+4096$/m,
    /^GGUF metadata \(15 keys; --json for every value\):$/m, /^ {2}general\.name\s+Tiny Llama Test$/m, /^ {2}tokenizer\.ggml\.tokens\s+\[300 × string\]$/m,
    /^ {2}tokenizer\.ggml\.add_bos_token\s+true$/m, /^weight\s+.*\s+tiny\.gguf$/m]) {
    assert.match(text, re);
  }
  const json = JSON.parse((await mpk(env, dir, 'inspect', 'models/tiny:v1', '--json')).stdout);
  assert.equal(json.contextLength, 4096);
  assert.equal(Object.keys(json.ggufMetadata).length, 15);
  assert.equal(json.ggufMetadata['llama.rope.freq_base'], 10000);
  assert.deepEqual(json.ggufMetadata['tokenizer.ggml.scores'], { type: 'array', elementType: 'float32', length: 300 });
  const ls = JSON.parse((await mpk(env, dir, 'ls', '--json')).stdout);
  assert.deepEqual([ls[0].format, ls[0].paramSize, ls[0].quantization, ls[0].ggufMetadata], ['gguf', '1.47M', 'Q4_K_M', undefined]);
});
