/** describeSafetensors: parameters, precision and quantization from a header. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tempDir } from '../test-support/tmp.js';
import { MIXED_TENSORS, writeSafetensors, type TensorSpecs } from '../test-support/safetensors-writer.js';
import { SAFETENSORS_DTYPE_BITS, readSafetensorsHeader } from './safetensors.js';
import { describeSafetensors } from './safetensors-describe.js';


test('describeSafetensors: parameters, paramSize, dtype counts, bytes and the dominant precision', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'model.safetensors');
  await writeSafetensors(path, MIXED_TENSORS);
  const d = describeSafetensors([await readSafetensorsHeader(path)]);
  assert.deepEqual(d, {
    tensorCount: 8,
    parameterCount: 256 + 8 + 256 + 6 + 4 + 3 + 0 + 1,
    parameterSize: '534',
    tensorBytes: 1073,
    dtypes: { BF16: 512, F32: 8, F4: 6, F6_E2M3: 4, BOOL: 3, I64: 1, F16: 0 },
    precision: 'bfloat16',
  });
  assert.deepEqual(Object.keys(d.dtypes), ['BF16', 'F32', 'F4', 'F6_E2M3', 'BOOL', 'I64', 'F16'], 'largest first');
  // An empty file ({} header): nothing, and no precision.
  const empty = join(dir, 'empty.safetensors');
  await writeSafetensors(empty, {});
  const e = await readSafetensorsHeader(empty);
  assert.deepEqual([e.headerBytes, e.tensors, e.metadata], [8, [], undefined]);
  assert.deepEqual(describeSafetensors([e]), { tensorCount: 0, parameterCount: 0, parameterSize: '0', tensorBytes: 0, dtypes: {} });
});

test('precision words follow model-spec / torch_dtype names for every dtype', async (t) => {
  const dir = await tempDir(t);
  const want: Record<string, string> = {
    F64: 'float64', F32: 'float32', F16: 'float16', BF16: 'bfloat16', F8_E4M3: 'float8_e4m3', F8_E5M2: 'float8_e5m2',
    C64: 'complex64', I8: 'int8', I16: 'int16', I32: 'int32', I64: 'int64', U8: 'uint8', U16: 'uint16', U32: 'uint32',
    U64: 'uint64', BOOL: 'bool', F8_E8M0: 'float8_e8m0', F8_E4M3FNUZ: 'float8_e4m3fnuz', F8_E5M2FNUZ: 'float8_e5m2fnuz',
    F4: 'float4_e2m1', F6_E2M3: 'float6_e2m3', F6_E3M2: 'float6_e3m2',
  };
  assert.deepEqual(Object.keys(want).sort(), Object.keys(SAFETENSORS_DTYPE_BITS).sort(), 'every dtype has a word');
  for (const [dtype, word] of Object.entries(want)) {
    const path = join(dir, `${dtype}.safetensors`);
    await writeSafetensors(path, { w: { dtype, shape: [4, 4] }, b: { dtype: 'F32', shape: [1] } });
    const d = describeSafetensors([await readSafetensorsHeader(path)]);
    assert.equal(d.precision, word, dtype);
    assert.equal(d.parameterCount, 17, dtype);
  }
});

test('quantization from the header: GPTQ, AWQ, bitsandbytes, FP8, MXFP4, __metadata__', async (t) => {
  const dir = await tempDir(t);
  const describe = async (tensors: TensorSpecs, metadata?: Record<string, string>) => {
    const path = join(dir, 'q.safetensors');
    await writeSafetensors(path, tensors, metadata ? { metadata } : {});
    return describeSafetensors([await readSafetensorsHeader(path)]);
  };
  const gptq = {
    'model.embed_tokens.weight': { dtype: 'F16', shape: [64, 16] },
    'l.0.q_proj.qweight': { dtype: 'I32', shape: [256, 64] },
    'l.0.q_proj.qzeros': { dtype: 'I32', shape: [16, 8] },
    'l.0.q_proj.scales': { dtype: 'F16', shape: [16, 64] },
    'l.0.q_proj.g_idx': { dtype: 'I32', shape: [2048] },
  };
  let d = await describe(gptq);
  assert.equal(d.quantization, 'gptq');
  assert.equal(d.precision, 'float16', 'packed int32 words are not the precision');
  assert.deepEqual(d.dtypes, { I32: 16384 + 128 + 2048, F16: 1024 + 1024 });
  const { 'l.0.q_proj.g_idx': _, ...awq } = gptq;
  d = await describe(awq);
  assert.deepEqual([d.quantization, d.precision], ['awq', 'float16']);
  d = await describe({
    'l.0.weight': { dtype: 'U8', shape: [4096, 1] },
    'l.0.weight.absmax': { dtype: 'F32', shape: [128] },
    'l.0.weight.quant_map': { dtype: 'F32', shape: [16] },
    'l.0.weight.quant_state.bitsandbytes__nf4': { dtype: 'U8', shape: [90] },
    'norm.weight': { dtype: 'BF16', shape: [64] },
  });
  assert.deepEqual([d.quantization, d.precision], ['bitsandbytes-nf4', 'bfloat16']);
  d = await describe({ 'l.0.weight': { dtype: 'I8', shape: [64, 64] }, 'l.0.SCB': { dtype: 'F32', shape: [64] }, 'n.weight': { dtype: 'F16', shape: [64] } });
  assert.deepEqual([d.quantization, d.precision], ['bitsandbytes-int8', 'int8']);
  d = await describe({
    'l.0.weight': { dtype: 'F8_E4M3', shape: [256, 256] },
    'l.0.weight_scale_inv': { dtype: 'F32', shape: [2, 2] },
    'embed.weight': { dtype: 'BF16', shape: [256, 16] },
  });
  assert.deepEqual([d.quantization, d.precision], ['fp8', 'float8_e4m3']);
  d = await describe({
    'experts.gate_up_proj_blocks': { dtype: 'U8', shape: [32, 90, 16] },
    'experts.gate_up_proj_scales': { dtype: 'U8', shape: [32, 90] },
    'embed.weight': { dtype: 'BF16', shape: [64, 16] },
  });
  assert.deepEqual([d.quantization, d.precision], ['mxfp4', 'bfloat16']);
  d = await describe({ w: { dtype: 'I8', shape: [8] } }, { quant_method: 'compressed-tensors' });
  assert.deepEqual([d.quantization, d.precision], ['compressed-tensors', 'int8']);
  d = await describe({ 'l.weight': { dtype: 'BF16', shape: [8] }, 'l.bias': { dtype: 'BF16', shape: [8] } }, { format: 'pt' });
  assert.equal(d.quantization, undefined);
  assert.ok(!('quantization' in d));
});

// ------------------------------------------------------------------------------------------------
// Fuzz: seeded mutations of valid files. Each must parse (and then be self-consistent) or fail
// with CORRUPT / SIZE_EXCEEDS_LIMIT; nothing else, no hang, no allocation of a claimed length.
