/**
 * GGUF metadata value types (`enum gguf_type` in ggml/docs/gguf.md) and the values the reader
 * returns: integers up to 32 bits and floats as numbers, 64-bit integers as bigints, arrays with
 * their element type.
 */

/** GGUF metadata value types (`enum gguf_type`). */
export const GgufType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;
export type GgufType = (typeof GgufType)[keyof typeof GgufType];

const TYPE_NAMES = ['uint8', 'int8', 'uint16', 'int16', 'uint32', 'int32', 'float32', 'bool', 'string', 'array', 'uint64', 'int64', 'float64'] as const;
export type GgufTypeName = (typeof TYPE_NAMES)[number];

/** 'uint32' for GgufType.UINT32. */
export function ggufTypeName(t: GgufType): GgufTypeName {
  return TYPE_NAMES[t]!;
}

/** Bytes of a fixed-size value type; 0 for STRING and ARRAY. */
export const FIXED_SIZE = [1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8] as const;

/** An array value: its element type and its items (nested arrays are GgufArrays too). */
export interface GgufArray {
  readonly elementType: GgufType;
  readonly items: GgufValue[];
}

/** Integers up to 32 bits and floats are numbers, 64-bit integers bigints. */
export type GgufValue = number | bigint | boolean | string | GgufArray;

/** One metadata value with its GGUF type. */
export interface GgufKv {
  readonly type: GgufType;
  readonly value: GgufValue;
}

/** A metadata value without GGUF types: arrays as plain (nested) arrays. */
export type GgufPlainValue = number | bigint | boolean | string | GgufPlainValue[];

export function plainGgufValue(v: GgufValue): GgufPlainValue {
  return typeof v === 'object' ? v.items.map(plainGgufValue) : v;
}
