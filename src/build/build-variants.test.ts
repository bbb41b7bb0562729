/**
 * `mpk build` of several weights at once (issue 13): a Hugging Face style GGUF directory with
 * --variants (one model per quantization, the README, LICENSE and projector in each, an index of
 * them), several FILEs, the grouping of split sets, and the refusals.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mpk } from '../test-support/cli.js';
import { sampleModel, writeGguf } from '../test-support/gguf-writer.js';
import { writeTinyLlama } from '../test-support/tiny-llama.js';
import { tempDir, writeTree } from '../test-support/tmp.js';
import { groupWeights, variantTag } from './build-variants.js';

test('groupWeights: a GGUF per variant, split sets together, projectors apart, other formats as one', () => {
  const g = groupWeights(['a-00002-of-00002.gguf', 'a-00001-of-00002.gguf', 'b-Q8_0.gguf', 'mmproj-x-f16.gguf', 'model.safetensors', 'sub/c.GGUF']);
  assert.deepEqual(g.variants, [['a-00001-of-00002.gguf', 'a-00002-of-00002.gguf'], ['b-Q8_0.gguf'], ['sub/c.GGUF'], ['model.safetensors']]);
  assert.deepEqual(g.projectors, ['mmproj-x-f16.gguf']);
  assert.equal(variantTag('3b', 'Q4_K_M'), '3b-q4_k_m');
  assert.equal(variantTag('v1', 'Model Ä 7B!'), 'v1-model-7b');
});

test('build --variants DIR: one model per GGUF with the shared files, tagged TAG-<quantization>, and an index; deterministic', async (t) => {
  const dir = await tempDir(t);
  const env = { MPK_HOME: join(dir, 'store') };
  const repo = join(dir, 'repo');
  await writeTree(repo, { 'README.md': '# tiny\n', LICENSE: 'MIT\n' });
  for (const ft of ['F32', 'F16', 'Q8_0'] as const) await writeTinyLlama(join(repo, `tiny-${ft}.gguf`), { fileType: ft });
  await writeGguf(join(repo, 'mmproj-tiny-f16.gguf'), sampleModel());
  const r = await mpk(env, dir, 'build', '--variants', '-t', 'm/tiny:1', 'repo', '--json');
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(out.variants.map((v: { reference: string }) => v.reference), ['m/tiny:1-f16', 'm/tiny:1-f32', 'm/tiny:1-q8_0']);
  assert.deepEqual(out.variants.map((v: { annotations: Record<string, string> }) => v.annotations['org.cncf.model.quantization']), ['F16', 'F32', 'Q8_0']);
  for (const v of out.variants) {
    const ins = JSON.parse((await mpk(env, dir, 'inspect', '--json', v.reference)).stdout);
    const q = v.reference.split('-').pop().toUpperCase();
    assert.deepEqual(ins.files.map((f: { path: string }) => f.path).sort(), ['LICENSE', 'README.md', 'mmproj-tiny-f16.gguf', `tiny-${q}.gguf`], v.reference);
    assert.equal(ins.weights?.quantization ?? ins.quantization ?? q, q);
  }
  const index = JSON.parse((await mpk(env, dir, 'inspect', '--json', 'm/tiny:1')).stdout);
  assert.equal(index.digest, out.digest);
  assert.equal(index.manifest.mediaType, 'application/vnd.oci.image.index.v1+json');
  assert.deepEqual(index.variants.map((v: { stored: boolean }) => v.stored), [true, true, true]);
  const again = await mpk(env, dir, 'build', '--variants', '-t', 'm/tiny:1', 'repo', '-q');
  assert.equal(again.stdout.trim(), out.digest, 'the same files give the same index');
  // the store holds each shared file once
  const pulledBlobs = new Set<string>();
  for (const v of out.variants) for (const f of JSON.parse((await mpk(env, dir, 'inspect', '--json', v.reference)).stdout).files) pulledBlobs.add(f.digest);
  assert.equal(pulledBlobs.size, 3 + 3, 'three weights, and README, LICENSE and the projector shared');
});

test('build -t REF FILE FILE...: one model per file and an index; refusals', async (t) => {
  const dir = await tempDir(t);
  const env = { MPK_HOME: join(dir, 'store') };
  for (const ft of ['F32', 'Q8_0'] as const) await writeTinyLlama(join(dir, `tiny-${ft}.gguf`), { fileType: ft });
  const r = await mpk(env, dir, 'build', '-t', 'm/two:v', 'tiny-F32.gguf', 'tiny-Q8_0.gguf');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Built m\/two:v-f32: 1 file, .*\nBuilt m\/two:v-q8_0: 1 file, .*\nBuilt index m\/two:v: 2 variants\nDigest: sha256:[0-9a-f]{64}\n$/);
  const ls = (await mpk(env, dir, 'ls', '-q')).stdout.split('\n').filter(Boolean).sort();
  assert.deepEqual(ls, ['m/two:v', 'm/two:v-f32', 'm/two:v-q8_0']);

  await writeTree(dir, { 'one/README.md': 'x\n' });
  await writeTinyLlama(join(dir, 'one', 'tiny.gguf'), { fileType: 'F16' });
  const one = await mpk(env, dir, 'build', '--variants', '-t', 'm/one:1', 'one');
  assert.equal(one.code, 2, one.stderr);
  assert.match(one.stderr, /--variants needs two or more models .*found 1.*drop --variants/);
  const withF = await mpk(env, dir, 'build', '--variants', '-f', 'Modelfile', '-t', 'm/one:1', 'one');
  assert.equal(withF.code, 2);
  assert.match(withF.stderr, /-f does not go with --variants/);
  const mixed = await mpk(env, dir, 'build', '-t', 'm/mix:1', 'one', 'tiny-F32.gguf');
  assert.equal(mixed.code, 2);
  assert.match(mixed.stderr, /one: with several inputs each must be a model file/);
  assert.ok(!(await mpk(env, dir, 'ls', '-q')).stdout.includes('m/one') && !(await mpk(env, dir, 'ls', '-q')).stdout.includes('m/mix'), 'nothing tagged');
});
