/**
 * `POST /v1/chat/completions` and `POST /v1/completions`: one generation on a leased model, as one
 * JSON answer or as server-sent events shaped as OpenAI sends them (a first chunk with the role,
 * content deltas, a last chunk with `finish_reason`, a `usage` chunk when asked, `[DONE]`).
 * Request fields override the model's own defaults (Ollama params, …); the model's `system`
 * prompt is put first when the request has no system message.
 */
import { randomBytes } from 'node:crypto';
import type { ChatMessage, EngineModel, GenerateOptions, Generation } from '../engine/engine.js';
import { DEFAULT_TEMPERATURE, type RunSettings } from '../run/settings.js';
import type { ApiDeps, Call } from './call.js';
import { toApiError } from './errors.js';
import { readJson, sendJson } from './http.js';
import { parseChatRequest, parseCompletionRequest, type Sampling } from './openai-types.js';
import { SseStream } from './sse.js';

interface Job {
  kind: 'chat' | 'text';
  model: string;
  stream: boolean;
  includeUsage: boolean;
  sampling: Sampling;
  /** Which field a context overflow is about. */
  promptParam: 'messages' | 'prompt';
  run(model: EngineModel, defaults: RunSettings, opts: GenerateOptions): Promise<Generation>;
}

export async function chatCompletions(deps: ApiDeps, call: Call): Promise<void> {
  const r = parseChatRequest(await readJson(call.req, deps.maxBody));
  await generate(deps, call, {
    kind: 'chat',
    model: r.model,
    stream: r.stream,
    includeUsage: r.includeUsage,
    sampling: r,
    promptParam: 'messages',
    run: (model, defaults, opts) => model.chat(withSystem(r.messages, defaults.system), opts),
  });
}

export async function completions(deps: ApiDeps, call: Call): Promise<void> {
  const r = parseCompletionRequest(await readJson(call.req, deps.maxBody));
  await generate(deps, call, {
    kind: 'text',
    model: r.model,
    stream: r.stream,
    includeUsage: r.includeUsage,
    sampling: r,
    promptParam: 'prompt',
    run: (model, _defaults, opts) => model.complete(r.prompt, opts),
  });
}

function withSystem(messages: ChatMessage[], system: string | undefined): ChatMessage[] {
  if (!system || messages.some((m) => m.role === 'system')) return messages;
  return [{ role: 'system', content: system }, ...messages];
}

/** The request's fields, else the model's defaults; absent both, mpk's (temperature 0.8, to the end). */
function options(s: Sampling, d: RunSettings, signal: AbortSignal): GenerateOptions {
  const o: GenerateOptions = { signal };
  const maxTokens = s.maxTokens ?? d.maxTokens;
  const temperature = s.temperature ?? d.temperature ?? DEFAULT_TEMPERATURE;
  const topP = s.topP ?? d.topP;
  const seed = s.seed ?? d.seed;
  const stop = s.stop ?? d.stop;
  if (maxTokens !== undefined) o.maxTokens = maxTokens;
  if (temperature !== undefined) o.temperature = temperature;
  if (topP !== undefined) o.topP = topP;
  if (seed !== undefined) o.seed = seed;
  if (stop?.length) o.stop = stop;
  return o;
}

function usage(g: Generation): { prompt_tokens: number; completion_tokens: number; total_tokens: number } {
  return { prompt_tokens: g.promptTokens, completion_tokens: g.completionTokens, total_tokens: g.promptTokens + g.completionTokens };
}

/** A client that left gets no answer, so 'abort' never reaches one: it reads as 'stop'. */
const finishReason = (g: Generation): 'stop' | 'length' => (g.finishReason === 'length' ? 'length' : 'stop');

async function generate(deps: ApiDeps, call: Call, job: Job): Promise<void> {
  call.note.model = job.model;
  const lease = await deps.pool.acquire(job.model, call.signal);
  try {
    const opts = options(job.sampling, lease.runnable.defaults, call.signal);
    const id = `${job.kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomBytes(12).toString('hex')}`;
    const head = { id, object: job.kind === 'chat' ? 'chat.completion' : 'text_completion', created: Math.floor(Date.now() / 1000), model: job.model };
    if (!job.stream) {
      const g = await job.run(lease.model, lease.runnable.defaults, opts).catch((e: unknown) => {
        throw toApiError(e, { promptParam: job.promptParam });
      });
      noteTokens(call, g);
      const choice =
        job.kind === 'chat'
          ? { index: 0, message: { role: 'assistant', content: g.text, refusal: null }, logprobs: null, finish_reason: finishReason(g) }
          : { index: 0, text: g.text, logprobs: null, finish_reason: finishReason(g) };
      sendJson(call.res, 200, { ...head, choices: [choice], usage: usage(g) });
      return;
    }
    await stream(call, job, head, (o) => job.run(lease.model, lease.runnable.defaults, o), opts);
  } finally {
    lease.release();
  }
}

async function stream(call: Call, job: Job, head: { id: string; object: string; created: number; model: string }, run: (o: GenerateOptions) => Promise<Generation>, opts: GenerateOptions): Promise<void> {
  const sse = new SseStream(call.res);
  const chunkHead = { ...head, object: job.kind === 'chat' ? 'chat.completion.chunk' : 'text_completion' };
  // With include_usage every chunk carries `usage: null` and one more chunk carries the counts.
  const u = job.includeUsage ? { usage: null } : {};
  const chunk = (text: string | undefined, finish: string | null, role = false): unknown =>
    job.kind === 'chat'
      ? { ...chunkHead, choices: [{ index: 0, delta: role ? { role: 'assistant', content: '' } : text === undefined ? {} : { content: text }, logprobs: null, finish_reason: finish }], ...u }
      : { ...chunkHead, choices: [{ index: 0, text: text ?? '', logprobs: null, finish_reason: finish }], ...u };
  const begin = (): void => {
    if (!sse.started && job.kind === 'chat') sse.send(chunk(undefined, null, true));
  };
  let g: Generation;
  try {
    g = await run({
      ...opts,
      onText: (t) => {
        if (t === '') return;
        begin();
        sse.send(chunk(t, null));
      },
    });
  } catch (e) {
    const err = toApiError(e, { promptParam: job.promptParam });
    if (!sse.started) throw err;
    call.note.error = err.message;
    sse.fail(err);
    return;
  }
  noteTokens(call, g);
  begin();
  sse.send(chunk(job.kind === 'chat' ? undefined : '', finishReason(g)));
  if (job.includeUsage) sse.send({ ...chunkHead, choices: [], usage: usage(g) });
  sse.done();
}

function noteTokens(call: Call, g: Generation): void {
  call.note.tokens = `${g.promptTokens}+${g.completionTokens}`;
  call.note.finish = g.finishReason;
}
