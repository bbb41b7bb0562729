/**
 * `mpk modelfile generate` filling ARCH, FAMILY, FORMAT, PARAMSIZE, PRECISION and QUANTIZATION from
 * the weights' headers (real GGUF, safetensors and ONNX files, tensor data as sparse holes).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateModelfile } from './generate.js';
import { formatModelfile } from './parse.js';
import { kv, sampleModel, writeGguf, type GgufWriteSpec, type GgufWriteTensor } from '../test-support/gguf-writer.js';
import { writeSafetensors, writeShardedSafetensors } from '../test-support/safetensors-writer.js';
import { writeOnnxModel } from '../test-support/onnx-writer.js';
import { tempDir, writeTree } from '../test-support/tmp.js';

const Q4_K = 12;
const Q6_K = 14;
const F32 = 0;

/** Mistral 7B's shapes (7,241,732,096 parameters) as a Q4_K_M GGUF: a 4 GB file of which only the header is on disk. */
function mistral7b(): GgufWriteSpec {
  const [d, kvDim, ff, vocab] = [4096, 1024, 14336, 32000];
  const tensors: GgufWriteTensor[] = [{ name: 'token_embd.weight', dims: [d, vocab], type: Q4_K }];
  for (let b = 0; b < 32; b++) {
    tensors.push({ name: `blk.${b}.attn_norm.weight`, dims: [d], type: F32 }, { name: `blk.${b}.ffn_norm.weight`, dims: [d], type: F32 });
    tensors.push({ name: `blk.${b}.attn_q.weight`, dims: [d, d], type: Q4_K }, { name: `blk.${b}.attn_output.weight`, dims: [d, d], type: Q4_K });
    tensors.push({ name: `blk.${b}.attn_k.weight`, dims: [d, kvDim], type: Q4_K }, { name: `blk.${b}.attn_v.weight`, dims: [d, kvDim], type: Q6_K });
    tensors.push({ name: `blk.${b}.ffn_gate.weight`, dims: [d, ff], type: Q4_K }, { name: `blk.${b}.ffn_up.weight`, dims: [d, ff], type: Q4_K });
    tensors.push({ name: `blk.${b}.ffn_down.weight`, dims: [ff, d], type: Q6_K });
  }
  tensors.push({ name: 'output_norm.weight', dims: [d], type: F32 }, { name: 'output.weight', dims: [d, vocab], type: Q6_K });
  const metadata = sampleModel().metadata!; // llama, file type 15 (Q4_K_M), context 4096, a 300-token vocabulary
  return { metadata, tensors };
}

test('a GGUF directory: ARCH, FAMILY, PARAMSIZE, QUANTIZATION and FORMAT from the header, read in milliseconds', async (t) => {
  const dir = await tempDir(t);
  const { fileSize } = await writeGguf(join(dir, 'mistral-7b.Q4_K_M.gguf'), mistral7b());
  assert.ok(fileSize > 4e9, 'a 4 GB file (sparse)');
  await writeFile(join(dir, 'README.md'), '# Mistral\n');
  const started = performance.now();
  const { modelfile: mf, warnings, weights } = await generateModelfile(dir);
  assert.ok(performance.now() - started < 2000, 'only the header is read');
  assert.deepEqual(warnings, []);
  assert.deepEqual(
    [mf.arch, mf.family, mf.paramSize, mf.quantization, mf.format, mf.precision],
    ['llama', 'llama', '7.24B', 'Q4_K_M', 'gguf', undefined],
  );
  assert.equal(weights?.parameterCount, 7_241_732_096);
  assert.equal(weights?.contextLength, 4096);
  assert.equal(weights?.ggufMetadata?.['general.architecture'], 'llama');
  assert.deepEqual(weights?.ggufMetadata?.['tokenizer.ggml.tokens'], { type: 'array', elementType: 'string', length: 300 }, 'large arrays summarised');
  const text = formatModelfile(mf);
  for (const line of ['ARCH llama', 'FAMILY llama', 'PARAMSIZE 7.24B', 'QUANTIZATION Q4_K_M', 'FORMAT gguf', 'MODEL mistral-7b.Q4_K_M.gguf']) assert.match(text, new RegExp(`^${line}$`, 'm'));
});

test('one GGUF file: a Modelfile of that file alone; options win, and one the header contradicts is warned about', async (t) => {
  const dir = await tempDir(t);
  await writeGguf(join(dir, 'Tiny-Q4_K_M.gguf'), sampleModel());
  await writeFile(join(dir, 'config.json'), JSON.stringify({ model_type: 'qwen2', torch_dtype: 'bfloat16' })); // not read for one file
  const { modelfile: mf, warnings } = await generateModelfile(join(dir, 'Tiny-Q4_K_M.gguf'), { quantization: 'Q8_0', paramSize: '1.5M' });
  assert.equal(mf.name, 'tiny-q4_k_m');
  assert.deepEqual(mf.model.map((e) => e.pattern), ['Tiny-Q4_K_M.gguf']);
  assert.deepEqual([mf.config.length, mf.doc.length], [0, 0]);
  assert.deepEqual([mf.family, mf.precision, mf.quantization, mf.paramSize], ['llama', undefined, 'Q8_0', '1.5M']);
  assert.deepEqual(warnings, ['--quantization Q8_0 contradicts the weights: Tiny-Q4_K_M.gguf says Q4_K_M; keeping Q8_0']);
  // 1.5M is within 25% of the file's 1.47M parameters: no warning about it.
});

test('a file with no model extension is sniffed: GGUF content makes it MODEL', async (t) => {
  const dir = await tempDir(t);
  await writeGguf(join(dir, 'sha256-0123abcd'), sampleModel({ fileType: 1, types: { weight: 1, norm: 0, output: 1 } }));
  const { modelfile: mf, warnings } = await generateModelfile(dir);
  assert.deepEqual(mf.model.map((e) => e.pattern), ['sha256-0123abcd']);
  assert.deepEqual([mf.format, mf.precision, mf.quantization], ['gguf', 'float16', undefined], 'an F16 file has a precision, not a quantization');
  assert.deepEqual(warnings, []);
});

test('safetensors with config.json: config.json wins where it says, parameters from the headers', async (t) => {
  const dir = await tempDir(t);
  await writeSafetensors(join(dir, 'model.safetensors'), {
    'model.embed_tokens.weight': { dtype: 'F16', shape: [1000, 64] },
    'model.layers.0.mlp.up_proj.weight': { dtype: 'F16', shape: [256, 64] },
    'model.norm.weight': { dtype: 'F32', shape: [64] },
  }, { data: 'sparse' });
  await writeFile(join(dir, 'config.json'), JSON.stringify({ model_type: 'qwen2', torch_dtype: 'bfloat16', transformers_version: '4.45.0', max_position_embeddings: 32768 }));
  const { modelfile: mf, warnings } = await generateModelfile(dir);
  assert.deepEqual(warnings, []);
  assert.deepEqual(
    [mf.arch, mf.family, mf.format, mf.paramSize, mf.precision, mf.quantization],
    ['transformer', 'qwen2', 'safetensors', '80.4K', 'bfloat16', undefined],
  );
  // Without config.json the headers give the precision.
  await writeFile(join(dir, 'config.json'), '{}');
  assert.equal((await generateModelfile(dir)).modelfile.precision, 'float16');
});

test('sharded safetensors: the index names the model; a file beside it that it does not name is not counted', async (t) => {
  const dir = await tempDir(t);
  await writeShardedSafetensors(dir, {
    'model-00001-of-00002.safetensors': { a: { dtype: 'BF16', shape: [1000, 1000] } },
    'model-00002-of-00002.safetensors': { b: { dtype: 'BF16', shape: [500, 1000] } },
  }, { data: 'sparse' });
  await writeSafetensors(join(dir, 'consolidated.safetensors'), { x: { dtype: 'BF16', shape: [1500, 1000] } }, { data: 'sparse' });
  const { modelfile: mf, warnings, weights } = await generateModelfile(dir);
  assert.equal(mf.paramSize, '1.5M', 'the two shards, not the consolidated copy');
  assert.equal(mf.precision, 'bfloat16');
  assert.deepEqual(weights?.source, ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
  assert.deepEqual(warnings, ['consolidated.safetensors is not in model.safetensors.index.json: not counted in the model\'s parameters']);
});

test('an ONNX model gives FORMAT onnx; weights of several formats: the most bytes win, and a warning says so', async (t) => {
  const dir = await tempDir(t);
  await writeOnnxModel(join(dir, 'model.onnx'), { graph: { initializerBytes: 4096 } });
  const onnx = await generateModelfile(dir);
  assert.equal(onnx.modelfile.format, 'onnx');
  assert.deepEqual(onnx.warnings, []);
  await writeGguf(join(dir, 'small.gguf'), sampleModel()); // ~1 MB of (sparse) data: more bytes than the ONNX file
  const both = await generateModelfile(dir);
  assert.equal(both.modelfile.format, 'gguf');
  assert.equal(both.modelfile.quantization, 'Q4_K_M');
  assert.match(both.warnings.join('\n'), /^weights in several formats: gguf \(1 file, [\d.]+ [KM]B\), onnx \(1 file, [\d.]+ KB\); the fields describe the gguf ones, which hold the most bytes$/m);
});

test('a corrupt GGUF: a warning naming the file and the reason; still listed, FORMAT from its name, nothing else inferred', async (t) => {
  const dir = await tempDir(t);
  const enc = await writeGguf(join(dir, 'model.gguf'), sampleModel());
  await writeTree(dir, { 'README.md': '# x\n' });
  // Damage the tensor count: the header claims more tensors than the file can hold.
  const field = enc.fields.find((f) => f.what === 'tensor count')!;
  const bytes = Buffer.from(enc.header);
  bytes.writeBigUInt64LE(1n << 40n, field.at);
  await writeFile(join(dir, 'model.gguf'), bytes);
  const { modelfile: mf, warnings } = await generateModelfile(dir);
  assert.deepEqual(mf.model.map((e) => e.pattern), ['model.gguf']);
  assert.deepEqual([mf.format, mf.arch, mf.paramSize, mf.quantization], ['gguf', undefined, undefined, undefined]);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /^model\.gguf: not a valid GGUF file at byte \d+: the header claims 1099511627776 tensors, .* \(packaged as it is; nothing is inferred from it\)$/);
});

test('GGUF shards form one model; several GGUF models: the largest, with a warning (a projector is not one)', async (t) => {
  const dir = await tempDir(t);
  const split = (no: number, tensors: GgufWriteTensor[]): GgufWriteSpec => {
    const base = sampleModel();
    const md = no === 0 ? [...base.metadata!] : [['general.architecture', kv.str('llama')] as const];
    return { metadata: [...md, ['split.no', kv.u16(no)], ['split.count', kv.u16(2)], ['split.tensors.count', kv.i32(base.tensors!.length)]], tensors };
  };
  const all = sampleModel().tensors!;
  await writeGguf(join(dir, 'm-00001-of-00002.gguf'), split(0, all.slice(0, 8)));
  await writeGguf(join(dir, 'm-00002-of-00002.gguf'), split(1, all.slice(8)));
  await writeGguf(join(dir, 'mmproj-f16.gguf'), { metadata: [['general.architecture', kv.str('clip')], ['clip.has_vision_encoder', kv.bool(true)]], tensors: [{ name: 'v.w', dims: [32], type: F32 }] });
  const { modelfile: mf, warnings, weights } = await generateModelfile(dir);
  assert.deepEqual(warnings, [], 'a projector beside the model is expected');
  assert.equal(mf.paramSize, '1.47M', 'both shards counted');
  assert.equal(mf.arch, 'llama');
  assert.deepEqual(weights?.source, ['m-00001-of-00002.gguf', 'm-00002-of-00002.gguf']);
  assert.equal(weights?.ggufMetadata?.['split.count'], 2);
  await writeGguf(join(dir, 'other.gguf'), { metadata: [['general.architecture', kv.str('qwen2')], ['general.file_type', kv.u32(7)]], tensors: [{ name: 'w', dims: [32], type: 8 }] });
  const more = await generateModelfile(dir);
  assert.equal(more.modelfile.arch, 'llama');
  assert.match(more.warnings.join('\n'), /^3 GGUF models \(m-00001-of-00002\.gguf \(2 shards\), mmproj-f16\.gguf, other\.gguf\): the fields describe the largest, m-00001-of-00002\.gguf \(2 shards\)$/m);
});
