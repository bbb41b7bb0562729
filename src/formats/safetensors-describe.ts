/**
 * What the headers of one safetensors model say (one file, or the shards of one model): parameter
 * count, dtypes, the ModelPack precision word, and a quantization scheme the tensor names or
 * `__metadata__` show. Pure: works on headers readSafetensorsHeader returned.
 */
import { formatParamCount } from './param-size.js';
import { SAFETENSORS_DTYPE_BITS, type SafetensorsDtype, type SafetensorsHeader, type SafetensorsTensor } from './safetensors.js';

/**
 * ModelPack `config.precision` words for each dtype. model-spec's config.md documents the PyTorch
 * dtype names (`float32`, `float16`, `bfloat16`, `float8_e4m3`, `float8_e5m2`, `int8`, `uint8`,
 * `bool`, `complex64`, …), and modctl fills PRECISION with config.json's `torch_dtype` verbatim, which
 * gives the same words (`bfloat16`). Dtypes the spec does not list follow the same pattern.
 */
export const SAFETENSORS_DTYPE_PRECISION: Readonly<Record<SafetensorsDtype, string>> = {
  BOOL: 'bool',
  F4: 'float4_e2m1',
  F6_E2M3: 'float6_e2m3',
  F6_E3M2: 'float6_e3m2',
  U8: 'uint8',
  I8: 'int8',
  F8_E5M2: 'float8_e5m2',
  F8_E4M3: 'float8_e4m3',
  F8_E8M0: 'float8_e8m0',
  F8_E4M3FNUZ: 'float8_e4m3fnuz',
  F8_E5M2FNUZ: 'float8_e5m2fnuz',
  I16: 'int16',
  U16: 'uint16',
  F16: 'float16',
  BF16: 'bfloat16',
  I32: 'int32',
  U32: 'uint32',
  F32: 'float32',
  C64: 'complex64',
  F64: 'float64',
  I64: 'int64',
  U64: 'uint64',
};

export interface SafetensorsDescription {
  tensorCount: number;
  /** Elements over every tensor (Hugging Face's "safetensors parameters" total). */
  parameterCount: number;
  /** `parameterCount` as ModelPack's paramSize (`494M`, `7.24B`). */
  parameterSize: string;
  /** Bytes of tensor data (what an index's `metadata.total_size` counts). */
  tensorBytes: number;
  /** dtype → element count, largest first. */
  dtypes: Partial<Record<SafetensorsDtype, number>>;
  /**
   * The ModelPack precision word of the dtype holding most elements, leaving out packed quantized
   * data (GPTQ/AWQ `qweight`, bitsandbytes 4-bit blobs, MXFP4 blocks), whose container dtype is not
   * a precision. Absent when there are no such tensors.
   */
  precision?: string;
  /** A quantization scheme the header shows: by `__metadata__` or by tensor naming conventions. */
  quantization?: string;
}

/** Sums what one or more headers (the shards of one model) say. */
export function describeSafetensors(headers: readonly SafetensorsHeader[]): SafetensorsDescription {
  const all: SafetensorsTensor[] = headers.flatMap((h) => h.tensors);
  const counts = new Map<SafetensorsDtype, number>();
  let parameterCount = 0;
  let tensorBytes = 0;
  for (const t of all) {
    const n = ((t.end - t.begin) * 8) / SAFETENSORS_DTYPE_BITS[t.dtype];
    counts.set(t.dtype, (counts.get(t.dtype) ?? 0) + n);
    parameterCount += n;
    tensorBytes += t.end - t.begin;
  }
  const byCount = (a: [string, number], b: [string, number]) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1);
  const dtypes = Object.fromEntries([...counts].sort(byCount)) as Partial<Record<SafetensorsDtype, number>>;

  const quant = detectQuantization(headers, all);
  const votes = new Map<SafetensorsDtype, number>();
  for (const t of all) {
    if (quant?.packed(t)) continue;
    votes.set(t.dtype, (votes.get(t.dtype) ?? 0) + ((t.end - t.begin) * 8) / SAFETENSORS_DTYPE_BITS[t.dtype]);
  }
  const top = [...votes].filter(([, n]) => n > 0).sort(byCount)[0]?.[0];
  const out: SafetensorsDescription = {
    tensorCount: all.length,
    parameterCount,
    parameterSize: formatParamCount(parameterCount),
    tensorBytes,
    dtypes,
  };
  if (top) out.precision = SAFETENSORS_DTYPE_PRECISION[top];
  if (quant) out.quantization = quant.name;
  return out;
}

interface Quantization {
  name: string;
  /** A tensor whose dtype is a container for packed values, not a precision. */
  packed(t: SafetensorsTensor): boolean;
}

const never = () => false;

/**
 * Only what the headers show. `__metadata__` keys `quant_method` or `quantization` win; otherwise
 * the conventions of the common exporters: GPTQ (`qweight` + `g_idx`), AWQ (`qweight` + `qzeros` +
 * `scales`, no `g_idx`), bitsandbytes (`weight.quant_state.bitsandbytes__nf4|fp4`, int8 `SCB`),
 * MXFP4 (U8 `*_blocks` with `*_scales`, as gpt-oss ships), FP8 (F8 weights with `weight_scale` or
 * `weight_scale_inv`). config.json's `quantization_config` is read elsewhere.
 */
function detectQuantization(headers: readonly SafetensorsHeader[], all: readonly SafetensorsTensor[]): Quantization | undefined {
  const names = new Set(all.map((t) => t.name));
  const ends = (suffix: string) => all.some((t) => t.name.endsWith(suffix));
  const fromMeta = headers
    .map((h) => h.metadata?.quant_method ?? h.metadata?.quantization)
    .find((v) => typeof v === 'string' && v.trim() !== '');
  const qweight = ends('.qweight');
  const gptqPacked = (t: SafetensorsTensor) => /\.(qweight|qzeros|g_idx)$/.test(t.name);
  let found: Quantization | undefined;
  if (qweight && ends('.g_idx')) found = { name: 'gptq', packed: gptqPacked };
  else if (qweight && ends('.qzeros') && ends('.scales')) found = { name: 'awq', packed: gptqPacked };
  else if (qweight) found = { name: 'gptq', packed: gptqPacked };
  else {
    const bnb4 = all.find((t) => /\.quant_state\.bitsandbytes__(nf4|fp4)$/.test(t.name));
    if (bnb4) {
      const kind = bnb4.name.endsWith('nf4') ? 'nf4' : 'fp4';
      const packedBase = new Set(
        all.filter((t) => t.name.includes('.quant_state.bitsandbytes__')).map((t) => t.name.slice(0, t.name.indexOf('.quant_state.'))),
      );
      found = {
        name: `bitsandbytes-${kind}`,
        packed: (t) => packedBase.has(t.name) || /\.(absmax|quant_map|nested_absmax|nested_quant_map)$/.test(t.name) || t.name.includes('.quant_state.'),
      };
    } else if (all.some((t) => t.name.endsWith('.SCB') && names.has(`${t.name.slice(0, -4)}.weight`))) {
      found = { name: 'bitsandbytes-int8', packed: never };
    } else if (all.some((t) => t.dtype === 'U8' && t.name.endsWith('_blocks') && names.has(`${t.name.slice(0, -7)}_scales`))) {
      found = { name: 'mxfp4', packed: (t) => (t.name.endsWith('_blocks') || t.name.endsWith('_scales')) && t.dtype === 'U8' };
    } else if (
      all.some(
        (t) => (t.dtype === 'F8_E4M3' || t.dtype === 'F8_E5M2') && t.name.endsWith('.weight') &&
          (names.has(`${t.name}_scale`) || names.has(`${t.name}_scale_inv`)),
      )
    ) {
      found = { name: 'fp8', packed: never };
    }
  }
  if (fromMeta) return { name: fromMeta.trim(), packed: found?.packed ?? never };
  return found;
}
