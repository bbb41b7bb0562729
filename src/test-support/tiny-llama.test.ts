import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { importLlamaCpp } from './llama.js';
import { tempDir } from './tmp.js';
import { TINY_LLAMA_DIMS, TINY_LLAMA_VOCAB_SIZE, toF16, writeTinyLlama, writeTinyLora } from './tiny-llama.js';
import { GgufType, readGgufHeader } from '../formats/gguf.js';

// more threads than cores is ~30x slower (llama.cpp spins); on a model this small 1 thread beats 2
// (whole file: 3.0 s with 1, 4.5-5 s with 2, on 2 cores)
const THREADS = 1;
const PRINTABLE = /^[\x20-\x7e]+$/;

test('toF16 rounds like IEEE half precision', () => {
  assert.equal(toF16(1), 0x3c00);
  assert.equal(toF16(-2), 0xc000);
  assert.equal(toF16(65504), 0x7bff);
  assert.equal(toF16(1e6), 0x7c00);
  assert.equal(toF16(2 ** -24), 0x0001); // smallest subnormal
  assert.equal(toF16(1 + 2 ** -11), 0x3c00); // a tie rounds to even
  assert.equal(toF16(1 + 3 * 2 ** -11), 0x3c02);
});

test('same seed → same bytes; another seed or type → other bytes', async (t) => {
  const dir = await tempDir(t);
  const a = await writeTinyLlama(join(dir, 'a.gguf'), { seed: 3 });
  const b = await writeTinyLlama(join(dir, 'b.gguf'), { seed: 3 });
  const c = await writeTinyLlama(join(dir, 'c.gguf'), { seed: 4 });
  const f = await writeTinyLlama(join(dir, 'f.gguf'), { seed: 3, fileType: 'F32' });
  assert.deepEqual(await readFile(a.path), await readFile(b.path));
  assert.equal(a.size, c.size);
  assert.notDeepEqual(await readFile(a.path), await readFile(c.path));
  assert.ok(a.size > 150_000 && a.size < 220_000, `Q8_0 size ${a.size}`);
  assert.ok(f.size > 600_000 && f.size < 720_000, `F32 size ${f.size}`);
  const l1 = await writeTinyLora(join(dir, 'l1.gguf'));
  const l2 = await writeTinyLora(join(dir, 'l2.gguf'));
  assert.deepEqual(await readFile(l1.path), await readFile(l2.path));
});

test('our own GGUF reader sees the layout llama.cpp needs', async (t) => {
  const dir = await tempDir(t);
  const { path } = await writeTinyLlama(join(dir, 'm.gguf'), { name: 'x', contextLength: 1024, chatTemplate: null });
  const g = await readGgufHeader(path); // also checks that every tensor's data lies in the file
  const md = g.metadata;
  assert.equal(md.get('general.name')?.value, 'x');
  assert.deepEqual(md.get('llama.context_length'), { type: GgufType.UINT32, value: 1024 });
  assert.deepEqual(md.get('llama.rope.freq_base'), { type: GgufType.FLOAT32, value: 10000 });
  assert.equal(md.get('llama.vocab_size')?.value, TINY_LLAMA_VOCAB_SIZE);
  assert.equal(md.has('tokenizer.chat_template'), false);
  assert.equal(g.tensors.length, 3 + 9 * TINY_LLAMA_DIMS.blocks);
  assert.equal(g.tensors.find((x) => x.name === 'output.weight')?.typeName, 'Q8_0');
  assert.equal(g.tensors.find((x) => x.name === 'output_norm.weight')?.typeName, 'F32');
  const last = g.tensors.at(-1)!;
  assert.equal(g.fileSize, g.dataOffset + Math.ceil((last.offset + last.bytes!) / 32) * 32, 'data padded to 32');
});

test('llama.cpp loads the tiny model and generates from it', async (t) => {
  const mod = await importLlamaCpp(t);
  if (!mod) return;
  const { getLlama, LlamaCompletion, LlamaChatSession, LlamaLogLevel } = mod;
  const dir = await tempDir(t);
  const q8 = await writeTinyLlama(join(dir, 'q8.gguf'));
  const f32 = await writeTinyLlama(join(dir, 'f32.gguf'), { fileType: 'F32' });
  const f16 = await writeTinyLlama(join(dir, 'f16.gguf'), { fileType: 'F16' });
  const lora = await writeTinyLora(join(dir, 'lora.gguf'));

  // build 'never' + skipDownload: use the prebuilt binary or fail, never compile or fetch
  const llama = await getLlama({ gpu: false, build: 'never', skipDownload: true, maxThreads: THREADS, logLevel: LlamaLogLevel.error });
  t.after(() => llama.dispose());

  /** Greedy completion of `prompt` by a fresh load of the file (optionally with the LoRA). */
  const complete = async (modelPath: string, prompt: string, withLora = false): Promise<string> => {
    const model = await llama.loadModel({ modelPath, useMmap: true });
    try {
      const ctx = await model.createContext({
        contextSize: 512,
        threads: THREADS,
        ...(withLora ? { lora: { adapters: [{ filePath: lora.path, scale: 1 }] } } : {}),
      });
      const completion = new LlamaCompletion({ contextSequence: ctx.getSequence() });
      return await completion.generateCompletion(prompt, { maxTokens: 16, temperature: 0 });
    } finally {
      await model.dispose(); // disposes its contexts too
    }
  };

  await t.test('Q8_0, F32 and F16 generate printable text, the same on every load', async () => {
    for (const path of [q8.path, f32.path, f16.path]) {
      const first = await complete(path, 'the cat');
      assert.match(first, PRINTABLE);
      assert.ok(first.trim().split(/\s+/).length >= 4, `words: ${JSON.stringify(first)}`);
      assert.equal(await complete(path, 'the cat'), first);
    }
  });

  await t.test('the LoRA adapter loads and changes greedy output', async () => {
    const base = await complete(q8.path, 'hello world');
    const adapted = await complete(q8.path, 'hello world', true);
    assert.match(adapted, PRINTABLE);
    assert.notEqual(adapted, base);
    assert.equal(await complete(q8.path, 'hello world', true), adapted);
  });

  await t.test('tokenizer, chat template and embeddings', async () => {
    const model = await llama.loadModel({ modelPath: q8.path, useMmap: true });
    try {
      assert.equal(model.fileInfo.tensorInfo?.length, 3 + 9 * TINY_LLAMA_DIMS.blocks);
      const tokens = model.tokenize('hello world');
      assert.equal(tokens.length, 2, 'whole words are single tokens');
      assert.equal(model.detokenize(tokens), 'hello world');
      const odd = 'naïve 🦙\n{x}';
      assert.equal(model.detokenize(model.tokenize(odd)), odd, 'byte fallback');

      const ctx = await model.createContext({ contextSize: 512, threads: THREADS });
      const chat = new LlamaChatSession({ contextSequence: ctx.getSequence() });
      assert.equal(chat.chatWrapper.wrapperName, 'ChatML');
      const reply = await chat.prompt('hello', { maxTokens: 16, temperature: 0 });
      assert.match(reply, PRINTABLE);
      await ctx.dispose();

      const emb = await model.createEmbeddingContext({ contextSize: 512, threads: THREADS });
      const { vector } = await emb.getEmbeddingFor('hello');
      assert.equal(vector.length, TINY_LLAMA_DIMS.embedding);
      assert.ok(vector.every(Number.isFinite) && vector.some((v) => v !== 0));
      await emb.dispose();
    } finally {
      await model.dispose();
    }
  });
});
