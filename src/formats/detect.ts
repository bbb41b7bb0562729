/**
 * What kind of model file this is, by its content: GGUF by its magic, safetensors by a plausible
 * header length followed by a JSON object, ONNX by its protobuf fields (see onnx.ts). The file
 * name decides only between formats whose content both fit; it never makes a format on its own.
 */
import { extname } from 'node:path';
import { openRegularFile, readAt } from '../internal/file-read.js';
import { SAFETENSORS_MAX_HEADER_BYTES } from './safetensors.js';
import { sniffOnnxHandle } from './onnx.js';

export type ModelFormat = 'gguf' | 'safetensors' | 'onnx';

/** In this order when the content fits several formats and the extension names none of them. */
const ORDER: readonly ModelFormat[] = ['gguf', 'safetensors', 'onnx'];
const EXTENSION: Readonly<Record<string, ModelFormat>> = { '.gguf': 'gguf', '.safetensors': 'safetensors', '.onnx': 'onnx' };

/** 'gguf', 'safetensors' or 'onnx' by content, or undefined. Throws only when the file cannot be read. */
export async function detectModelFormat(path: string): Promise<ModelFormat | undefined> {
  const { fh, st } = await openRegularFile(path);
  try {
    const size = st.size;
    const head = await readAt(fh, path, 0, Math.min(size, 4096));
    const fits: ModelFormat[] = [];
    if (looksLikeGguf(head)) fits.push('gguf');
    if (looksLikeSafetensors(head, size)) fits.push('safetensors');
    if ((await sniffOnnxHandle(fh, path, size)) !== undefined) fits.push('onnx');
    return chooseFormat(fits, path);
  } finally {
    await fh.close().catch(() => {});
  }
}

/** One of the formats the content fits: the one the extension names, else the first in a fixed order. */
export function chooseFormat(fits: readonly ModelFormat[], path: string): ModelFormat | undefined {
  if (fits.length <= 1) return fits[0];
  const byName = EXTENSION[extname(path).toLowerCase()];
  if (byName && fits.includes(byName)) return byName;
  return ORDER.find((f) => fits.includes(f));
}

/** The four bytes `GGUF` (the reader itself is gguf.ts). */
export function looksLikeGguf(head: Uint8Array): boolean {
  return head.length >= 4 && head[0] === 0x47 && head[1] === 0x47 && head[2] === 0x55 && head[3] === 0x46;
}

/**
 * A header length N with 2 ≤ N ≤ the 100,000,000-byte limit and 8 + N ≤ the file size, then `{`
 * and, after any white space, `"` or `}`. The full check is readSafetensorsHeader.
 */
export function looksLikeSafetensors(head: Uint8Array, size: number): boolean {
  if (head.length < 10) return false;
  const n = Buffer.from(head.buffer, head.byteOffset, head.byteLength).readBigUInt64LE(0);
  if (n < 2n || n > BigInt(SAFETENSORS_MAX_HEADER_BYTES) || n + 8n > BigInt(size)) return false;
  if (head[8] !== 0x7b) return false;
  const end = Math.min(head.length, 8 + Number(n));
  for (let i = 9; i < end; i++) {
    const c = head[i]!;
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) continue;
    return c === 0x22 || c === 0x7d;
  }
  return 8 + Number(n) > head.length; // only white space so far, and the header goes on past what was read
}
