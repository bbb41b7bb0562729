/**
 * The model pool through `mpk api` with the real engine: least-recently-used unloading under
 * --max-models and --max-memory (never a busy model), the bounded per-model queue (429 with
 * Retry-After; a client that leaves the queue frees its place), and a client that disconnects
 * stopping its generation. Long generations use an 8192-token context: ~8000 tokens take ~24 s
 * here, so a stop within a few seconds is the abort working, not the generation ending.
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startApi, type ApiOptions, type RunningApi } from './server.js';
import { openFixture, TEST_THREADS, type Fixture } from '../test-support/api-fixture.js';

let fx: Fixture;
const servers: RunningApi[] = [];

before(async () => {
  fx = await openFixture();
});
after(async () => {
  for (const s of servers) await s.close();
  await fx?.close();
});

const TINY = 'models/tiny:q8';
const TINY2 = 'models/tiny2:q8';
const HELLO = [{ role: 'user' as const, content: 'hello' }];
const LONG_CONTEXT = 8192;

async function serve(t: TestContext, o: Partial<ApiOptions> = {}): Promise<{ api: RunningApi; client: OpenAI } | undefined> {
  if (!fx.engine) {
    t.skip(`node-llama-cpp not installed: ${fx.engineProblem}`);
    return undefined;
  }
  const api = await startApi({ store: fx.store, addr: '127.0.0.1:0', threads: TEST_THREADS, engine: fx.sharedEngine, ...o });
  servers.push(api);
  return { api, client: new OpenAI({ baseURL: `${api.url}/v1`, apiKey: 'x', maxRetries: 0 }) };
}

const loaded = (api: RunningApi): string[] =>
  api
    .stats()
    .models.filter((m) => m.state === 'loaded')
    .map((m) => m.reference)
    .sort();

/** A long streamed chat, read until its first text arrives; abort() cuts the client. */
async function longStream(client: OpenAI, model = TINY): Promise<{ abort(): void; rest: Promise<unknown> }> {
  const ac = new AbortController();
  const stream = await client.chat.completions.create({ model, messages: HELLO, max_tokens: LONG_CONTEXT - 100, stream: true }, { signal: ac.signal });
  const it = stream[Symbol.asyncIterator]();
  for (;;) {
    const c = await it.next();
    if (c.done || c.value.choices[0]?.delta.content) break;
  }
  const rest = (async () => {
    for (let c = await it.next(); !c.done; c = await it.next());
  })().catch((e: unknown) => e);
  return { abort: () => ac.abort(), rest };
}

async function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function waitFor(cond: () => boolean, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('--max-models 1: alternating models unload each other, least recently used first', async (t) => {
  const s = await serve(t, { maxModels: 1 });
  if (!s) return;
  const ask = (model: string) => s.client.chat.completions.create({ model, messages: HELLO, max_tokens: 2 });
  await ask(TINY);
  assert.deepEqual(loaded(s.api), [TINY]);
  await ask(TINY2);
  assert.deepEqual(loaded(s.api), [TINY2]);
  await ask(TINY);
  assert.deepEqual(loaded(s.api), [TINY]);
  assert.deepEqual([s.api.stats().loads, s.api.stats().unloads], [3, 2]);
});

test('--max-models 1 holds for requests to several models at once: a load waits for a busy model to finish', async (t) => {
  const s = await serve(t, { maxModels: 1 });
  if (!s) return;
  let most = 0;
  const watch = setInterval(() => (most = Math.max(most, loaded(s.api).length)), 1);
  try {
    const asks = [TINY, TINY2, TINY, TINY2].map((model) => s.client.chat.completions.create({ model, messages: HELLO, max_tokens: 8 }));
    for (const r of await Promise.all(asks)) assert.equal(r.usage!.completion_tokens, 8);
  } finally {
    clearInterval(watch);
  }
  assert.equal(most, 1, 'never two models loaded at once');
  assert.ok(s.api.stats().loads >= 2);
});

test('--max-memory: the sum of weight bytes decides; both fit under a larger budget', async (t) => {
  const probe = await serve(t);
  if (!probe) return;
  await probe.client.embeddings.create({ model: TINY, input: 'cat' });
  const bytes = probe.api.stats().models[0]!.weightBytes;
  assert.ok(bytes > 100_000, String(bytes));

  const tight = (await serve(t, { maxModels: 5, maxMemory: Math.floor(bytes * 1.5) }))!;
  await tight.client.embeddings.create({ model: TINY, input: 'cat' });
  await tight.client.embeddings.create({ model: TINY2, input: 'cat' });
  assert.deepEqual(loaded(tight.api), [TINY2]);

  const roomy = (await serve(t, { maxModels: 5, maxMemory: bytes * 3 }))!;
  await roomy.client.embeddings.create({ model: TINY, input: 'cat' });
  await roomy.client.embeddings.create({ model: TINY2, input: 'cat' });
  assert.deepEqual(loaded(roomy.api), [TINY2, TINY]);
  assert.equal(roomy.api.stats().unloads, 0);
});

test('a busy model is never unloaded: a load past the budget waits until it is idle', async (t) => {
  const s = await serve(t, { maxModels: 1, contextSize: LONG_CONTEXT });
  if (!s) return;
  const busy = await longStream(s.client, TINY);
  let answered = false;
  const other = s.client.chat.completions.create({ model: TINY2, messages: HELLO, max_tokens: 2 }).then((r) => ((answered = true), r));
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(loaded(s.api), [TINY], 'tiny2 waits: tiny is busy and the budget is one model');
  assert.equal(answered, false);
  busy.abort();
  // tiny goes idle, so it is unloaded for tiny2, which then answers
  assert.equal((await within(10_000, other, 'the waiting request')).usage!.completion_tokens, 2);
  assert.deepEqual(loaded(s.api), [TINY2]);
  assert.deepEqual([s.api.stats().loads, s.api.stats().unloads], [2, 1]);
  await busy.rest;
});

test('--parallel 2: two requests to one model generate at once', async (t) => {
  const s = await serve(t, { parallel: 2, queue: 0, contextSize: LONG_CONTEXT });
  if (!s) return;
  const a = await longStream(s.client);
  const b = await longStream(s.client);
  assert.deepEqual([s.api.stats().models[0]!.active, s.api.stats().models[0]!.queued], [2, 0]);
  await assert.rejects(s.client.chat.completions.create({ model: TINY, messages: HELLO, max_tokens: 2 }), (e: InstanceType<typeof OpenAI.APIError>) => e.status === 429);
  a.abort();
  b.abort();
  await within(5000, s.api.idle(), 'both cut generations');
  await Promise.all([a.rest, b.rest]);
});

test('a full queue answers 429 with Retry-After; a client that leaves the queue frees its place', async (t) => {
  const s = await serve(t, { queue: 1, contextSize: LONG_CONTEXT });
  if (!s) return;
  const running = await longStream(s.client);
  const leaver = new AbortController();
  const queued = s.client.chat.completions.create({ model: TINY, messages: HELLO, max_tokens: 2 }, { signal: leaver.signal }).catch((e: unknown) => e);
  await waitFor(() => s.api.stats().models[0]?.queued === 1);

  for (const r of await Promise.allSettled([1, 2].map(() => s.client.chat.completions.create({ model: TINY, messages: HELLO, max_tokens: 2 })))) {
    assert.equal(r.status, 'rejected');
    const e = (r as PromiseRejectedResult).reason as InstanceType<typeof OpenAI.APIError>;
    assert.ok(e instanceof OpenAI.APIError, String(e));
    assert.equal(e.status, 429);
    assert.equal(e.code, 'rate_limit_exceeded');
    assert.equal(e.headers?.get('retry-after'), '1');
  }
  // Another model has its own queue.
  assert.equal((await s.client.chat.completions.create({ model: TINY2, messages: HELLO, max_tokens: 2 })).usage!.completion_tokens, 2);

  leaver.abort();
  assert.ok((await queued) instanceof OpenAI.APIUserAbortError);
  await waitFor(() => s.api.stats().models.find((m) => m.reference === TINY)?.queued === 0);
  const next = s.client.chat.completions.create({ model: TINY, messages: HELLO, max_tokens: 2 });
  await waitFor(() => s.api.stats().models.find((m) => m.reference === TINY)?.queued === 1);
  running.abort();
  assert.equal((await within(5000, next, 'the request queued behind the cut one')).usage!.completion_tokens, 2);
  await running.rest;
});

test('a client that disconnects stops its generation; the next request is served at once', async (t) => {
  const logs: string[] = [];
  const s = await serve(t, { contextSize: LONG_CONTEXT, log: (l) => logs.push(l) });
  if (!s) return;
  const stream = await longStream(s.client);
  assert.equal(s.api.stats().models[0]!.active, 1);
  const cut = Date.now();
  stream.abort();
  await within(3000, s.api.idle(), 'the generation after its client left');
  t.diagnostic(`generation stopped ${Date.now() - cut} ms after the client left`);
  assert.equal(s.api.stats().models[0]!.active, 0);
  const started = Date.now();
  const r = await s.client.chat.completions.create({ model: TINY, messages: HELLO, max_tokens: 5 });
  assert.equal(r.usage!.completion_tokens, 5);
  assert.ok(Date.now() - started < 3000, `${Date.now() - started} ms`);
  assert.ok(logs.some((l) => /^POST \/v1\/chat\/completions 200 \(client gone\) \d+ms model=models\/tiny:q8 tokens=\d+\+\d+ finish=abort$/.test(l)), logs.join('\n'));
});
