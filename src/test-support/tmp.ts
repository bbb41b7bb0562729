/** Test helpers: temp dirs removed after the test, small model directories. */
import { mkdtemp, rm, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { TestContext } from 'node:test';

/** A fresh temp dir, removed when the test ends. */
export async function tempDir(t: TestContext | { after(fn: () => unknown): void }, prefix = 'mpk-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes files (path → content) under dir, creating parents. */
export async function writeTree(dir: string, files: Record<string, string | Uint8Array>): Promise<void> {
  for (const [p, content] of Object.entries(files)) {
    const abs = join(dir, p);
    await mkdir(dirname(abs), { recursive: true });
    await writeFile(abs, content);
  }
}

/** A small HF-style model directory. */
export async function makeModelDir(dir: string, seed = 'm'): Promise<Record<string, string | Uint8Array>> {
  const weights = Buffer.alloc(300_000);
  for (let i = 0; i < weights.length; i++) weights[i] = (i * 31 + seed.charCodeAt(0)) & 0xff;
  const files: Record<string, string | Uint8Array> = {
    'model.safetensors': weights,
    'config.json': JSON.stringify({ model_type: 'llama', torch_dtype: 'bfloat16', transformers_version: '4.40.0' }),
    'tokenizer.json': `{"seed":"${seed}"}`,
    'README.md': `# model ${seed}\n`,
    'modeling.py': 'print("hi")\n',
    'data/train.jsonl': '{"text":"a"}\n',
  };
  await writeTree(dir, files);
  return files;
}
