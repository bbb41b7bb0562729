/**
 * The llama.cpp engine on the tiny LLaMA: answers stopped before their first token are answers
 * (finishReason 'abort'), not errors; prompts that do not fit are CONTEXT_OVERFLOW before any
 * evaluation (embeddings included, at exactly the context size); stop texts end answers and their
 * tokens are counted; two sequences generate side by side.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Engine, EngineModel, Generation } from './engine.js';
import { loadEngine } from './engines.js';
import { importLlamaCpp } from '../test-support/llama.js';
import { PackError } from '../errors.js';
import { tempDir } from '../test-support/tmp.js';
import { writeTinyLlama } from '../test-support/tiny-llama.js';

async function overflows(p: Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(p, (e) => e instanceof PackError && e.code === 'CONTEXT_OVERFLOW' && re.test(e.message) && !!e.hint);
}

const HELLO = [{ role: 'user' as const, content: 'Hello there' }];

async function tiny(t: TestContext, contextSize = 256, parallel = 1): Promise<EngineModel | undefined> {
  if (!(await importLlamaCpp(t))) return undefined;
  const path = join(await tempDir(t), 'tiny.gguf');
  await writeTinyLlama(path);
  const engine: Engine = await loadEngine({ maxThreads: 1 });
  const model = await engine.load({ path, threads: 1, contextSize, parallel });
  t.after(async () => {
    await model.unload();
    await engine.close();
  });
  return model;
}

test('an answer stopped before or during generation is an answer, not an error', async (t) => {
  const model = await tiny(t);
  if (!model) return;
  for (const delay of [0, 1, 5, 30]) {
    const ac = new AbortController();
    const running: Promise<Generation> = model.chat(HELLO, { maxTokens: 200, temperature: 0, signal: ac.signal });
    setTimeout(() => ac.abort(new Error('stop')), delay);
    const g: Generation = await running;
    assert.equal(g.finishReason, 'abort', `aborted after ${delay} ms`);
    assert.ok(g.completionTokens < 200);
  }
  const ac = new AbortController();
  const c = model.complete('the cat', { maxTokens: 200, signal: ac.signal });
  ac.abort(new Error('stop'));
  assert.equal((await c).finishReason, 'abort');
  // the sequence was given back: the next answer runs
  assert.equal((await model.chat(HELLO, { maxTokens: 3, temperature: 0 })).completionTokens, 3);
});

test('prompts that do not fit the context are CONTEXT_OVERFLOW with the numbers; answers are capped to the room left', async (t) => {
  const model = await tiny(t, 64);
  if (!model) return;
  const n = model.contextSize; // llama.cpp rounds small contexts up (256 here)
  assert.ok(n >= 64);
  const words = (k: number) => `${'cat '.repeat(k - 1)}cat`; // k tokens, plus BOS
  await overflows(model.chat([{ role: 'user', content: words(n + 10) }]), new RegExp(`^the prompt is \\d+ tokens; the context holds ${n}$`));
  await overflows(model.complete(words(n + 10)), /^the prompt is \d+ tokens/);
  // n - 2 words + BOS fit an embedding; n - 1 words + BOS fill the context, which llama.cpp refuses
  const fit = await model.embed(words(n - 2));
  assert.equal(fit.tokens, n - 1);
  assert.equal(fit.vector.length, 64);
  await overflows(model.embed(words(n - 1)), new RegExp(`^the input is ${n} tokens`));
  const g = await model.complete(words(n - 6), { temperature: 0 });
  assert.equal(g.finishReason, 'length');
  assert.equal(g.promptTokens + g.completionTokens, n);
});

test('a stop text ends the answer; its tokens are counted; two sequences answer at once, as one would alone', async (t) => {
  const model = await tiny(t, 256, 2);
  if (!model) return;
  const full = await model.chat(HELLO, { maxTokens: 12, temperature: 0 });
  const words = full.text.split(' ');
  const stop = ` ${words[3]}`;
  const cut = await model.chat(HELLO, { maxTokens: 12, temperature: 0, stop: [stop] });
  assert.equal(cut.text, full.text.slice(0, full.text.indexOf(stop)));
  assert.equal(cut.finishReason, 'stop');
  assert.ok(cut.completionTokens > model.tokenize(cut.text).length - 1, `${cut.completionTokens} tokens for ${JSON.stringify(cut.text)} and the stop text`);
  const [a, b] = await Promise.all([model.chat(HELLO, { maxTokens: 12, temperature: 0 }), model.complete('the cat', { maxTokens: 12, temperature: 0 })]);
  assert.equal(a.text, full.text);
  assert.equal(b.completionTokens, 12);
});
