/**
 * The tiny LLaMA of tiny-llama.ts split across 2 or 3 GGUF files the way llama.cpp's gguf-split
 * writes them: every file gets `split.no` (UINT16, from 0), `split.count` (UINT16) and
 * `split.tensors.count` (INT32, the tensors of the whole model); the first file holds all the
 * model's metadata (the split keys last, as gguf_set_kv + gguf_set_val_* leave them) and its
 * share of the tensors, later files only the split keys and theirs. Tensor data offsets start
 * again at 0 in each file. Names follow llama.cpp's `PREFIX-%05d-of-%05d.gguf`, which is how it
 * finds the other shards from the first one.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { readGgufHeader, type GgufKv } from '../formats/gguf.js';
import { kv, writeGguf, type GgufWriteTensor } from './gguf-writer.js';
import { writeTinyLlama, type TinyLlamaOptions } from './tiny-llama.js';

export interface TinyLlamaSplitOptions extends TinyLlamaOptions {
  shards: 2 | 3;
  /** File name prefix (default 'tiny'): `tiny-00001-of-00002.gguf`. */
  prefix?: string;
}

/** Writes the shards into dir; returns their paths in split.no order. */
export async function writeTinyLlamaSplit(dir: string, opts: TinyLlamaSplitOptions): Promise<string[]> {
  const { shards, prefix = 'tiny', ...model } = opts;
  // the unsplit model, written and read back: the very same tensors and metadata
  const tmp = await mkdtemp(join(dir, '.tiny-unsplit-'));
  try {
    const whole = join(tmp, 'whole.gguf');
    await writeTinyLlama(whole, model);
    const h = await readGgufHeader(whole);
    const bytes = await readFile(whole);
    const data = (name: string): Buffer => {
      const t = h.tensors.find((x) => x.name === name)!;
      return bytes.subarray(h.dataOffset + t.offset, h.dataOffset + t.offset + t.bytes!);
    };
    const total = h.tensors.length;
    const per = Math.ceil(total / shards);
    const split = (no: number): Array<[string, GgufKv]> => [
      ['split.no', kv.u16(no)],
      ['split.count', kv.u16(shards)],
      ['split.tensors.count', kv.i32(total)],
    ];
    const paths: string[] = [];
    for (let no = 0; no < shards; no++) {
      const part = h.tensors.slice(no * per, (no + 1) * per);
      const tensors: GgufWriteTensor[] = part.map((t) => ({ name: t.name, dims: [...t.dims], type: t.type }));
      const metadata = no === 0 ? [...h.metadata.entries(), ...split(no)] : split(no);
      const path = join(dir, `${prefix}-${String(no + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.gguf`);
      await writeGguf(path, { version: 3, metadata, tensors }, { data: (t) => data(t.name) });
      paths.push(path);
    }
    return paths;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
