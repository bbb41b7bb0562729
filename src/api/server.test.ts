/**
 * `mpk api` with the real engine (llama.cpp through node-llama-cpp) and the official `openai`
 * client over real HTTP on 127.0.0.1, against a store holding two tiny LLaMA GGUFs and a
 * safetensors model. Without node-llama-cpp the engine tests skip (a failure under CI=true).
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { run } from '../cli/run.js';
import { engineMissing } from '../engine/engines.js';
import { startApi, type ApiOptions, type RunningApi } from './server.js';
import { openFixture, type Fixture } from '../test-support/api-fixture.js';
import { request } from '../test-support/serve.js';

let fx: Fixture;
const servers: RunningApi[] = [];

before(async () => {
  fx = await openFixture();
});
after(async () => {
  for (const s of servers) await s.close();
  await fx?.close();
});

async function serve(o: Partial<ApiOptions> = {}): Promise<{ api: RunningApi; client: OpenAI; logs: string[] }> {
  const logs: string[] = [];
  const api = await startApi({ store: fx.store, addr: '127.0.0.1:0', threads: 1, log: (l) => logs.push(l), ...(fx.engine ? { engine: fx.sharedEngine } : {}), ...o });
  servers.push(api);
  const client = new OpenAI({ baseURL: `${api.url}/v1`, apiKey: o.apiKey ?? 'x', maxRetries: 0 });
  return { api, client, logs };
}

const TINY = 'models/tiny:q8';
const HELLO = [{ role: 'user' as const, content: 'hello' }];

/** The APIError a call fails with, checked against status (and code / param when given). */
async function apiError(p: Promise<unknown>, status: number, code?: string, param?: string | null): Promise<InstanceType<typeof OpenAI.APIError>> {
  let caught: unknown;
  await assert.rejects(p, (e) => ((caught = e), true));
  assert.ok(caught instanceof OpenAI.APIError, `an APIError, not ${String(caught)}`);
  assert.equal(caught.status, status, caught.message);
  if (code !== undefined) assert.equal(caught.code, code, caught.message);
  if (param !== undefined) assert.equal(caught.param, param, caught.message);
  return caught;
}

async function post(url: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; json: { error: Record<string, unknown> } }> {
  const r = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
  return { status: r.status, headers: r.headers, json: (await r.json()) as { error: Record<string, unknown> } };
}

describe('the catalog and errors that need no engine', () => {
  test('GET /v1/models lists the GGUF models (not the safetensors one) with their creation time', async () => {
    const { client } = await serve();
    const models = (await client.models.list()).data;
    assert.deepEqual(
      models.map((m) => [m.id, m.object, m.owned_by, m.created]),
      [
        ['models/tiny2:q8', 'model', 'mpk', 0],
        ['models/tiny:q8', 'model', 'mpk', Date.parse('2025-01-02T03:04:05Z') / 1000],
      ],
    );
    const one = await client.models.retrieve(TINY);
    assert.equal(one.id, TINY);
    await apiError(client.models.retrieve('models/nosuch:1'), 404, 'model_not_found', 'model');
  });

  test('no engine installed: 503 with the install hint; the server lives on', async () => {
    const { client } = await serve({ engine: () => Promise.reject(engineMissing(new Error("Cannot find package 'node-llama-cpp'"))) });
    const e = await apiError(client.chat.completions.create({ model: TINY, messages: HELLO }), 503, 'engine_missing');
    assert.match(e.message, /node-llama-cpp.*Hint: npm install .*node-llama-cpp@3\.21\.1/);
    assert.equal((await client.models.list()).data.length, 2);
  });

  test('an API key is required when set, and off loopback', async (t) => {
    const { api, client } = await serve({ apiKey: 's3cret' });
    assert.equal((await client.models.list()).data.length, 2);
    const wrong = new OpenAI({ baseURL: `${api.url}/v1`, apiKey: 's3creT', maxRetries: 0 });
    await apiError(wrong.models.list(), 401, 'invalid_api_key');
    const none = await fetch(`${api.url}/v1/models`);
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('www-authenticate'), 'Bearer');
    await assert.rejects(startApi({ store: fx.store, addr: '0.0.0.0:0' }), (e: Error) => /refusing .* without an API key/.test(e.message));
    t.diagnostic('key checked through SHA-256 digests with timingSafeEqual');
  });

  test('without a key, only this machine: a foreign Host (DNS rebinding) or a web page Origin is 403', async () => {
    const { api } = await serve();
    const port = api.port;
    const get = (headers: Record<string, string>) => request(`${api.url}/v1/models`, { headers });
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, 'app.localhost']) assert.equal((await get({ host })).status, 200, host);
    const rebound = await get({ host: `attacker.example:${port}` });
    assert.equal(rebound.status, 403);
    assert.equal(rebound.json().error.code, 'forbidden_host');
    for (const origin of ['http://attacker.example', 'https://127.0.0.1.evil.example', 'not a url']) {
      const r = await get({ host: `127.0.0.1:${port}`, origin });
      assert.equal(r.status, 403, origin);
      assert.equal(r.json().error.code, 'forbidden_origin');
    }
    assert.equal((await get({ host: `127.0.0.1:${port}`, origin: `http://localhost:3000` })).status, 200);
    // a model name with control characters is quoted in the log, not written raw to the terminal
    const { api: logged, logs } = await serve();
    await post(`${logged.url}/v1/chat/completions`, JSON.stringify({ model: 'a\u001b[2Jb c', messages: HELLO }));
    assert.ok(logs.some((l) => l.includes('\\u001b[2Jb c')), logs.join('\n'));
    assert.ok(logs.every((l) => !l.includes('\u001b')), logs.join('\n'));
    const long = await post(`${logged.url}/v1/chat/completions`, JSON.stringify({ model: 'm'.repeat(600), messages: HELLO }));
    assert.equal(long.status, 400);
    assert.equal(long.json.error.param, 'model');
  });

  test('bad requests get OpenAI error bodies, and the server answers after each', async () => {
    const { api, client } = await serve();
    const alive = async (): Promise<void> => assert.equal((await client.models.list()).data.length, 2);
    const chat = `${api.url}/v1/chat/completions`;

    await apiError(client.chat.completions.create({ model: 'models/nosuch:1', messages: HELLO }), 404, 'model_not_found', 'model');
    await alive();
    await apiError(client.chat.completions.create({ model: 'Not A Reference', messages: HELLO }), 404, 'model_not_found', 'model');
    await alive();
    const st = await apiError(client.chat.completions.create({ model: 'models/st:1', messages: HELLO }), 400, 'model_not_supported', 'model');
    assert.match(st.message, /safetensors/);
    await alive();

    let r = await post(chat, '{"model": "models/tiny:q8", "messages": [');
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, 'invalid_json');
    assert.deepEqual(Object.keys(r.json.error).sort(), ['code', 'message', 'param', 'type']);
    await alive();
    r = await post(chat, '[1, 2]');
    assert.equal(r.status, 400);
    assert.equal(r.json.error.param, 'body');
    await alive();

    await apiError(client.chat.completions.create({ model: TINY, messages: HELLO, temperature: 'hot' as unknown as number }), 400, 'invalid_value', 'temperature');
    await apiError(client.chat.completions.create({ model: TINY, messages: [{ role: 'user', content: 7 as unknown as string }] }), 400, 'invalid_value', 'messages[0].content');
    await apiError(client.chat.completions.create({ model: TINY, messages: HELLO, stop: ['ok', 3 as unknown as string] }), 400, 'invalid_value', 'stop[1]');
    await apiError(client.chat.completions.create({ model: TINY, messages: [] }), 400, 'invalid_value', 'messages');
    await apiError(client.completions.create({ model: TINY, prompt: [1, 2, 3] }), 400, 'invalid_value', 'prompt');
    await apiError(client.embeddings.create({ model: TINY, input: [[1, 2]] }), 400, 'invalid_value', 'input[0]');
    await alive();

    r = await post(chat, Buffer.alloc(5 * 1024 * 1024 + 1, 0x20));
    assert.equal(r.status, 413);
    assert.equal(r.json.error.code, 'request_too_large');
    await alive();

    const get = await fetch(chat);
    assert.equal(get.status, 405);
    assert.equal(get.headers.get('allow'), 'POST');
    assert.equal(((await get.json()) as { error: { code: string } }).error.code, 'method_not_allowed');
    const missing = await fetch(`${api.url}/v2/whatever`);
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'not_found');
    await alive();
  });
});

describe('with the engine', () => {
  const ready = (t: TestContext): boolean => {
    if (fx.engine) return true;
    t.skip(`node-llama-cpp not installed: ${fx.engineProblem}`);
    return false;
  };

  let shared: { api: RunningApi; client: OpenAI; logs: string[] };
  /** The greedy answer to HELLO in 12 tokens. */
  let greedy = '';

  test('two requests for an unloaded model load it once; chat answers with usage', async (t) => {
    if (!ready(t)) return;
    shared = await serve();
    const { api, client, logs } = shared;
    const ask = () => client.chat.completions.create({ model: TINY, messages: HELLO, max_tokens: 12, temperature: 0, seed: 1 });
    const [a, b] = await Promise.all([ask(), ask()]);
    assert.equal(api.stats().loads, 1);
    assert.equal(a.object, 'chat.completion');
    assert.match(a.id, /^chatcmpl-[0-9a-f]{24}$/);
    assert.equal(a.model, TINY);
    greedy = a.choices[0]!.message.content!;
    assert.ok(greedy.length > 0);
    assert.equal(b.choices[0]!.message.content, greedy, 'greedy is deterministic');
    assert.equal(a.choices[0]!.message.role, 'assistant');
    const u = a.usage!;
    assert.ok(u.prompt_tokens > 0 && u.completion_tokens > 0, JSON.stringify(u));
    assert.equal(u.prompt_tokens + u.completion_tokens, u.total_tokens);
    assert.equal(u.completion_tokens, 12);
    assert.equal(a.choices[0]!.finish_reason, 'length');
    assert.ok(logs.some((l) => /^POST \/v1\/chat\/completions 200 \d+ms model=models\/tiny:q8 tokens=\d+\+12 finish=length$/.test(l)), logs.join('\n'));
  });

  test('chat streamed: role first, deltas equal the JSON answer, finish_reason, usage when asked', async (t) => {
    if (!ready(t)) return;
    const stream = await shared.client.chat.completions.create({ model: TINY, messages: HELLO, max_tokens: 12, temperature: 0, seed: 1, stream: true, stream_options: { include_usage: true } });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const c of stream) chunks.push(c);
    assert.equal(chunks[0]!.choices[0]!.delta.role, 'assistant');
    assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0]!.id));
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    assert.equal(text, greedy);
    const last = chunks.at(-2)!;
    assert.equal(last.choices[0]!.finish_reason, 'length');
    const usage = chunks.at(-1)!;
    assert.deepEqual(usage.choices, []);
    assert.equal(usage.usage!.completion_tokens, 12);

    // Without include_usage: no usage chunk, finish_reason on the last one.
    const plain: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const c of await shared.client.chat.completions.create({ model: TINY, messages: HELLO, max_tokens: 12, temperature: 0, stream: true })) plain.push(c);
    assert.equal(plain.at(-1)!.choices[0]!.finish_reason, 'length');
    assert.ok(plain.every((c) => c.usage === undefined));
  });

  test('completions, JSON and streamed', async (t) => {
    if (!ready(t)) return;
    const { client } = shared;
    const c = await client.completions.create({ model: TINY, prompt: 'the cat', max_tokens: 8, temperature: 0 });
    assert.equal(c.object, 'text_completion');
    assert.match(c.id, /^cmpl-/);
    const text = c.choices[0]!.text;
    assert.ok(text.length > 0);
    assert.equal(c.choices[0]!.finish_reason, 'length');
    assert.equal(c.usage!.completion_tokens, 8);
    assert.equal(c.usage!.prompt_tokens + c.usage!.completion_tokens, c.usage!.total_tokens);
    let streamed = '';
    let finish: string | null = null;
    for await (const chunk of await client.completions.create({ model: TINY, prompt: 'the cat', max_tokens: 8, temperature: 0, stream: true })) {
      streamed += chunk.choices[0]?.text ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(streamed, text);
    assert.equal(finish, 'length');
  });

  test('embeddings: one or many inputs, base64 (the client default) and float', async (t) => {
    if (!ready(t)) return;
    const { client } = shared;
    const e = await client.embeddings.create({ model: TINY, input: ['hello world', 'cat'] });
    assert.equal(e.data.length, 2);
    assert.deepEqual(e.data.map((d) => [d.index, d.embedding.length]), [[0, 64], [1, 64]]);
    assert.ok(e.usage.prompt_tokens > 0 && e.usage.total_tokens === e.usage.prompt_tokens);
    // A digest reference names the same model: it shares the loaded one.
    const digest = shared.api.stats().models[0]!.digest;
    const f = await client.embeddings.create({ model: `models/tiny@${digest}`, input: 'hello world', encoding_format: 'float' });
    assert.equal(f.model, `models/tiny@${digest}`);
    assert.equal(shared.api.stats().loads, 1);
    assert.equal(f.data[0]!.embedding.length, 64);
    f.data[0]!.embedding.forEach((x, i) => assert.ok(Math.abs(x - e.data[0]!.embedding[i]!) < 1e-6));
  });

  test('max_tokens, max_completion_tokens, stop (string and array) and seed are honoured', async (t) => {
    if (!ready(t)) return;
    const { client } = shared;
    const short = await client.chat.completions.create({ model: TINY, messages: HELLO, max_completion_tokens: 3, temperature: 0 });
    assert.ok(short.usage!.completion_tokens <= 3);
    assert.equal(short.choices[0]!.finish_reason, 'length');
    const words = greedy.split(' ');
    const stop = ` ${words[3]}`;
    const expected = greedy.slice(0, greedy.indexOf(stop));
    for (const s of [stop, [stop, 'zzz-never']]) {
      const r = await client.chat.completions.create({ model: TINY, messages: HELLO, max_tokens: 12, temperature: 0, stop: s });
      assert.equal(r.choices[0]!.message.content, expected, JSON.stringify(s));
      assert.equal(r.choices[0]!.finish_reason, 'stop');
    }
    const sampled = () => client.chat.completions.create({ model: TINY, messages: HELLO, max_tokens: 12, temperature: 1, top_p: 0.9, seed: 42 });
    assert.equal((await sampled()).choices[0]!.message.content, (await sampled()).choices[0]!.message.content);
  });

  test('a prompt longer than the context: 400 with the numbers, streamed or not', async (t) => {
    if (!ready(t)) return;
    const { client } = shared;
    const long = [{ role: 'user' as const, content: 'cat '.repeat(2100) }];
    const e = await apiError(client.chat.completions.create({ model: TINY, messages: long }), 400, 'context_length_exceeded', 'messages');
    assert.match(e.message, /\d{4} tokens; the context holds 2048/);
    await apiError(client.chat.completions.create({ model: TINY, messages: long, stream: true }), 400, 'context_length_exceeded');
    await apiError(client.completions.create({ model: TINY, prompt: 'cat '.repeat(2100) }), 400, 'context_length_exceeded', 'prompt');
    await apiError(client.embeddings.create({ model: TINY, input: ['cat', 'cat '.repeat(2100)] }), 400, 'context_length_exceeded', 'input[1]');
    assert.equal((await client.chat.completions.create({ model: TINY, messages: HELLO, max_tokens: 2 })).usage!.completion_tokens, 2);
  });

  test('close() lets a running request finish, then refuses connections', async (t) => {
    if (!ready(t)) return;
    const { api, client } = await serve();
    const running = client.chat.completions.create({ model: TINY, messages: HELLO, max_tokens: 200 });
    await waitFor(() => api.stats().models.some((m) => m.active > 0));
    await api.close();
    assert.equal((await running).usage!.completion_tokens, 200);
    await assert.rejects(fetch(`${api.url}/v1/models`));
    assert.deepEqual(api.stats().models, []);
  });
});

test('mpk api: prints its address, serves the store, stops on the signal; bad flags are usage errors', async () => {
  const ac = new AbortController();
  let stdout = '';
  let stderr = '';
  const io = { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: {}, cwd: '/', signal: ac.signal };
  const done = run(['--store', fx.root, 'api', '--addr', '127.0.0.1:0', '--threads', '1', '--max-models', '1', '--max-memory', '1GiB', '-q'], io);
  await waitFor(() => stdout.includes('\n'));
  const m = /^Serving 2 models on (http:\/\/127\.0\.0\.1:\d+)\/v1; Ctrl-C stops\n$/.exec(stdout);
  assert.ok(m, stdout + stderr);
  const r = await fetch(`${m[1]}/v1/models`);
  assert.equal(((await r.json()) as { data: unknown[] }).data.length, 2);
  ac.abort();
  assert.equal(await done, 0, stderr);

  for (const [argv, re] of [
    [['--addr', '0.0.0.0:0'], /refusing .* without an API key/],
    [['--max-memory', 'lots'], /--max-memory "lots": not a size/],
    [['--queue', 'many'], /--queue "many": not a whole number/],
  ] as const) {
    let err = '';
    const code = await run(['--store', fx.root, 'api', ...argv], { ...io, signal: new AbortController().signal, stdout: { write: () => true }, stderr: { write: (s: string) => (err += s) } });
    assert.equal(code, 2, err);
    assert.match(err, re);
  }
});

async function waitFor(cond: () => boolean, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
}
