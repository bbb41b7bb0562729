import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PackError } from '../errors.js';
import { ApiError, toApiError } from './errors.js';
import { parseChatRequest, parseCompletionRequest, parseEmbeddingRequest } from './openai-types.js';

const M = 'models/tiny:q8';
const HELLO = [{ role: 'user', content: 'hi' }];

function refused(fn: () => unknown, param: string, re?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ApiError, String(e));
    assert.equal(e.status, 400);
    assert.equal(e.param, param, e.message);
    assert.ok(e.message.startsWith(`${param}: `), e.message);
    if (re) assert.match(e.message, re);
    return true;
  });
}

test('chat: fields mapped, null as absent, developer as system, text parts joined', () => {
  const r = parseChatRequest({
    model: ` ${M} `,
    messages: [
      { role: 'developer', content: 'be brief' },
      { role: 'user', content: [{ type: 'text', text: 'hel' }, { type: 'text', text: 'lo' }] },
      { role: 'assistant', content: null },
    ],
    max_tokens: 5,
    max_completion_tokens: 7,
    temperature: 0.5,
    top_p: 0.9,
    seed: -1,
    stop: 'END',
    stream: true,
    stream_options: { include_usage: true },
    n: 1,
    user: 'ignored',
    frequency_penalty: 0,
    tools: [],
    response_format: { type: 'text' },
    logprobs: null,
  });
  assert.deepEqual(r, {
    model: M,
    messages: [
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'hello' },
      { role: 'assistant', content: '' },
    ],
    stream: true,
    includeUsage: true,
    maxTokens: 7,
    temperature: 0.5,
    topP: 0.9,
    seed: 2 ** 32 - 1,
    stop: ['END'],
  });
  assert.deepEqual(parseChatRequest({ model: M, messages: HELLO, temperature: null, stop: null, stream: null }), { model: M, messages: [{ role: 'user', content: 'hi' }], stream: false, includeUsage: false });
});

test('chat: each bad field is a 400 naming it', () => {
  refused(() => parseChatRequest(null), 'body');
  refused(() => parseChatRequest([]), 'body');
  refused(() => parseChatRequest({ messages: HELLO }), 'model', /required/);
  refused(() => parseChatRequest({ model: 3, messages: HELLO }), 'model');
  refused(() => parseChatRequest({ model: M }), 'messages', /required/);
  refused(() => parseChatRequest({ model: M, messages: {} }), 'messages');
  refused(() => parseChatRequest({ model: M, messages: ['hi'] }), 'messages[0]');
  refused(() => parseChatRequest({ model: M, messages: [{ role: 'tool', content: 'x' }] }), 'messages[0].role', /not supported/);
  refused(() => parseChatRequest({ model: M, messages: [{ role: 'user' }] }), 'messages[0].content', /required/);
  refused(() => parseChatRequest({ model: M, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: {} }] }] }), 'messages[0].content[0].type', /only text/);
  refused(() => parseChatRequest({ model: M, messages: HELLO, temperature: '1' }), 'temperature', /a number/);
  refused(() => parseChatRequest({ model: M, messages: HELLO, temperature: 3 }), 'temperature', /between 0 and 2/);
  refused(() => parseChatRequest({ model: M, messages: HELLO, top_p: -0.1 }), 'top_p');
  refused(() => parseChatRequest({ model: M, messages: HELLO, max_tokens: 0 }), 'max_tokens', /at least 1/);
  refused(() => parseChatRequest({ model: M, messages: HELLO, max_completion_tokens: 1.5 }), 'max_completion_tokens', /whole number/);
  refused(() => parseChatRequest({ model: M, messages: HELLO, seed: 'x' }), 'seed');
  refused(() => parseChatRequest({ model: M, messages: HELLO, stop: 5 }), 'stop');
  refused(() => parseChatRequest({ model: M, messages: HELLO, stop: '' }), 'stop');
  refused(() => parseChatRequest({ model: M, messages: HELLO, stop: ['a', ''] }), 'stop[1]');
  refused(() => parseChatRequest({ model: M, messages: HELLO, stop: Array(17).fill('a') }), 'stop', /at most 16/);
  refused(() => parseChatRequest({ model: M, messages: HELLO, stream: 'yes' }), 'stream');
  refused(() => parseChatRequest({ model: M, messages: HELLO, stream_options: { include_usage: 1 } }), 'stream_options.include_usage');
  refused(() => parseChatRequest({ model: M, messages: HELLO, n: 2 }), 'n');
  refused(() => parseChatRequest({ model: M, messages: HELLO, logprobs: true }), 'logprobs');
  refused(() => parseChatRequest({ model: M, messages: HELLO, tools: [{ type: 'function' }] }), 'tools');
  refused(() => parseChatRequest({ model: M, messages: HELLO, response_format: { type: 'json_object' } }), 'response_format');
});

test('completions and embeddings', () => {
  assert.deepEqual(parseCompletionRequest({ model: M, prompt: ['once'], max_tokens: 3, echo: false }), { model: M, prompt: 'once', stream: false, includeUsage: false, maxTokens: 3 });
  refused(() => parseCompletionRequest({ model: M }), 'prompt', /required/);
  refused(() => parseCompletionRequest({ model: M, prompt: ['a', 'b'] }), 'prompt');
  refused(() => parseCompletionRequest({ model: M, prompt: 'a', echo: true }), 'echo');
  refused(() => parseCompletionRequest({ model: M, prompt: 'a', suffix: 'z' }), 'suffix');

  assert.deepEqual(parseEmbeddingRequest({ model: M, input: 'a' }), { model: M, input: ['a'], encoding: 'float' });
  assert.deepEqual(parseEmbeddingRequest({ model: M, input: ['a', 'b'], encoding_format: 'base64' }), { model: M, input: ['a', 'b'], encoding: 'base64' });
  refused(() => parseEmbeddingRequest({ model: M }), 'input', /required/);
  refused(() => parseEmbeddingRequest({ model: M, input: [] }), 'input');
  refused(() => parseEmbeddingRequest({ model: M, input: '' }), 'input', /empty/);
  refused(() => parseEmbeddingRequest({ model: M, input: ['a', 7] }), 'input[1]', /token arrays/);
  refused(() => parseEmbeddingRequest({ model: M, input: 'a', encoding_format: 'hex' }), 'encoding_format');
  refused(() => parseEmbeddingRequest({ model: M, input: 'a', dimensions: 32 }), 'dimensions');
});

test('library errors map to statuses, OpenAI types and codes; the hint stays in the message', () => {
  const cases: [PackError, number, string, string | null][] = [
    [new PackError('NOT_FOUND', 'm:1: no such model'), 404, 'model_not_found', 'model'],
    [new PackError('UNSUPPORTED', 'm:1: is a safetensors model'), 400, 'model_not_supported', 'model'],
    [new PackError('CONTEXT_OVERFLOW', 'the prompt is 3000 tokens; the context holds 2048'), 400, 'context_length_exceeded', 'messages'],
    [new PackError('BUSY', 'm:1: full'), 429, 'rate_limit_exceeded', null],
    [new PackError('ENGINE_MISSING', 'no engine', { hint: 'npm install node-llama-cpp' }), 503, 'engine_missing', null],
    [new PackError('ENGINE', 'llama.cpp failed'), 500, 'engine_error', null],
  ];
  for (const [pe, status, code, param] of cases) {
    const e = toApiError(new Error('wrapped', { cause: pe }), { promptParam: 'messages' });
    assert.deepEqual([e.status, e.code, e.param], [status, code, param], pe.code);
    assert.deepEqual(Object.keys(e.body().error), ['message', 'type', 'param', 'code']);
  }
  assert.match(toApiError(cases[4]![0]).message, /^no engine\. Hint: npm install node-llama-cpp$/);
  assert.equal(toApiError(cases[3]![0]).headers['retry-after'], '1');
  const internal = toApiError(new TypeError('oops'));
  assert.deepEqual([internal.status, internal.type], [500, 'server_error']);
});
