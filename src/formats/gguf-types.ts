/**
 * GGML's tensor types and llama.cpp's file types (`general.file_type`), as numbered in
 * ggml/include/ggml.h (`enum ggml_type`) and include/llama.h (`enum llama_ftype`). The numbers are
 * on disk, so they never change; new types are appended. Block layouts follow ggml-common.h:
 * `blockSize` elements are stored in `typeSize` bytes.
 */

export interface GgmlTypeInfo {
  readonly id: number;
  readonly name: string;
  /** elements per block */
  readonly blockSize: number;
  /** bytes per block */
  readonly typeSize: number;
}

const QK_K = 256;

// [id, name, elements per block, bytes per block]. Gaps (4, 5, 31-33, 36-38) are types ggml removed.
const TABLE: ReadonlyArray<readonly [number, string, number, number]> = [
  [0, 'F32', 1, 4],
  [1, 'F16', 1, 2],
  [2, 'Q4_0', 32, 2 + 16],
  [3, 'Q4_1', 32, 2 * 2 + 16],
  [6, 'Q5_0', 32, 2 + 4 + 16],
  [7, 'Q5_1', 32, 2 * 2 + 4 + 16],
  [8, 'Q8_0', 32, 2 + 32],
  [9, 'Q8_1', 32, 2 * 2 + 32],
  [10, 'Q2_K', QK_K, 2 * 2 + QK_K / 16 + QK_K / 4],
  [11, 'Q3_K', QK_K, 2 + QK_K / 4 + QK_K / 8 + 12],
  [12, 'Q4_K', QK_K, 2 * 2 + 12 + QK_K / 2],
  [13, 'Q5_K', QK_K, 2 * 2 + 12 + QK_K / 2 + QK_K / 8],
  [14, 'Q6_K', QK_K, 2 + QK_K / 16 + (3 * QK_K) / 4],
  [15, 'Q8_K', QK_K, 4 + QK_K + (QK_K / 16) * 2],
  [16, 'IQ2_XXS', QK_K, 2 + (QK_K / 8) * 2],
  [17, 'IQ2_XS', QK_K, 2 + (QK_K / 8) * 2 + QK_K / 32],
  [18, 'IQ3_XXS', QK_K, 2 + (3 * QK_K) / 8],
  [19, 'IQ1_S', QK_K, 2 + QK_K / 8 + QK_K / 16],
  [20, 'IQ4_NL', 32, 2 + 16],
  [21, 'IQ3_S', QK_K, 2 + QK_K / 4 + QK_K / 32 + QK_K / 8 + QK_K / 64],
  [22, 'IQ2_S', QK_K, 2 + QK_K / 4 + QK_K / 16],
  [23, 'IQ4_XS', QK_K, 2 + 2 + QK_K / 64 + QK_K / 2],
  [24, 'I8', 1, 1],
  [25, 'I16', 1, 2],
  [26, 'I32', 1, 4],
  [27, 'I64', 1, 8],
  [28, 'F64', 1, 8],
  [29, 'IQ1_M', QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32],
  [30, 'BF16', 1, 2],
  [34, 'TQ1_0', QK_K, 2 + 4 * 13],
  [35, 'TQ2_0', QK_K, 2 + 64],
  [39, 'MXFP4', 32, 1 + 16],
  [40, 'NVFP4', 64, 4 + 32],
  [41, 'Q1_0', 128, 2 + 16],
  [42, 'Q2_0', 64, 2 + 16],
];

/** Every current ggml type by id. */
export const GGML_TYPES: ReadonlyMap<number, GgmlTypeInfo> = new Map(
  TABLE.map(([id, name, blockSize, typeSize]) => [id, Object.freeze({ id, name, blockSize, typeSize })]),
);

const BY_NAME = new Map([...GGML_TYPES.values()].map((t) => [t.name, t]));

/** A ggml type id by name ('Q4_K' → 12); undefined when unknown. */
export function ggmlTypeId(name: string): number | undefined {
  return BY_NAME.get(name)?.id;
}

/** 'Q4_K' for 12; undefined for an id ggml does not define. */
export function ggmlTypeName(id: number): string | undefined {
  return GGML_TYPES.get(id)?.name;
}

/**
 * `llama_ftype` values as written to `general.file_type`, named the way llama-quantize and model
 * file names spell them (Q4_K_M, not "Q4_K - Medium").
 */
export const LLAMA_FILE_TYPES: ReadonlyMap<number, string> = new Map([
  [0, 'F32'], // LLAMA_FTYPE_ALL_F32
  [1, 'F16'],
  [2, 'Q4_0'],
  [3, 'Q4_1'],
  [4, 'Q4_1_SOME_F16'], // Ollama reuses 4 for MXFP4: see fileTypeName()
  [5, 'Q4_2'], // removed before GGUF existed
  [6, 'Q4_3'], // removed before GGUF existed
  [7, 'Q8_0'],
  [8, 'Q5_0'],
  [9, 'Q5_1'],
  [10, 'Q2_K'],
  [11, 'Q3_K_S'],
  [12, 'Q3_K_M'],
  [13, 'Q3_K_L'],
  [14, 'Q4_K_S'],
  [15, 'Q4_K_M'],
  [16, 'Q5_K_S'],
  [17, 'Q5_K_M'],
  [18, 'Q6_K'],
  [19, 'IQ2_XXS'],
  [20, 'IQ2_XS'],
  [21, 'Q2_K_S'],
  [22, 'IQ3_XS'],
  [23, 'IQ3_XXS'],
  [24, 'IQ1_S'],
  [25, 'IQ4_NL'],
  [26, 'IQ3_S'],
  [27, 'IQ3_M'],
  [28, 'IQ2_S'],
  [29, 'IQ2_M'],
  [30, 'IQ4_XS'],
  [31, 'IQ1_M'],
  [32, 'BF16'],
  [33, 'Q4_0_4_4'], // removed from llama.cpp; old files may carry them
  [34, 'Q4_0_4_8'],
  [35, 'Q4_0_8_8'],
  [36, 'TQ1_0'],
  [37, 'TQ2_0'],
  [38, 'MXFP4_MOE'],
  [39, 'NVFP4'],
  [40, 'Q1_0'],
  [41, 'Q2_0'],
]);

/** llama.cpp marks a file type it inferred from the tensors with this bit; files do not carry it. */
export const LLAMA_FTYPE_GUESSED = 1024;

/**
 * The file type name for `general.file_type`, or undefined for a number llama.cpp does not define.
 * `tensorTypes` (the ggml types present) resolves Ollama's reuse of 4 for MXFP4 (gpt-oss):
 * a genuine Q4_1_SOME_F16 file holds Q4_1 tensors, never MXFP4 ones.
 */
export function fileTypeName(fileType: number, tensorTypes?: ReadonlySet<number>): string | undefined {
  const ft = fileType & ~LLAMA_FTYPE_GUESSED;
  if (ft === 4 && tensorTypes?.has(39)) return 'MXFP4';
  return LLAMA_FILE_TYPES.get(ft);
}

/**
 * The file type llama.cpp infers from the most common tensor type when `general.file_type` is
 * absent (llama-model-loader: Q4_K → Q4_K_M and so on). Types it has no file type for keep their
 * own name.
 */
const GUESSED_FILE_TYPE: ReadonlyMap<number, string> = new Map([
  [0, 'F32'],
  [1, 'F16'],
  [30, 'BF16'],
  [2, 'Q4_0'],
  [3, 'Q4_1'],
  [6, 'Q5_0'],
  [7, 'Q5_1'],
  [8, 'Q8_0'],
  [10, 'Q2_K'],
  [11, 'Q3_K_M'],
  [12, 'Q4_K_M'],
  [13, 'Q5_K_M'],
  [14, 'Q6_K'],
  [34, 'TQ1_0'],
  [35, 'TQ2_0'],
  [16, 'IQ2_XXS'],
  [17, 'IQ2_XS'],
  [22, 'IQ2_S'],
  [18, 'IQ3_XXS'],
  [19, 'IQ1_S'],
  [29, 'IQ1_M'],
  [20, 'IQ4_NL'],
  [23, 'IQ4_XS'],
  [21, 'IQ3_S'],
  [39, 'MXFP4_MOE'],
  [40, 'NVFP4'],
  [41, 'Q1_0'],
  [42, 'Q2_0'],
]);

/** The file type name llama.cpp would guess for a file whose most common tensor type is `typeId`. */
export function guessedFileTypeName(typeId: number): string | undefined {
  return GUESSED_FILE_TYPE.get(typeId) ?? ggmlTypeName(typeId);
}
