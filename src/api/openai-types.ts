/**
 * The OpenAI request bodies mpk answers, validated into typed requests. Every refusal is a 400
 * naming the field (`messages[1].content`, `stop[0]`, …). `null` counts as absent, as OpenAI
 * treats it; fields mpk cannot honour but that change the answer's meaning (`n` > 1, `tools`,
 * `logprobs`, a JSON `response_format`) are refused rather than silently ignored; the rest of
 * OpenAI's fields (penalties, `user`, `metadata`, …) are accepted and ignored.
 * Reference: https://platform.openai.com/docs/api-reference/chat/create
 */
import type { ChatMessage } from '../engine/engine.js';
import { badField } from './errors.js';

/** Sampling fields shared by chat and completions; absent = the model's default. */
export interface Sampling {
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  seed?: number;
  stop?: string[];
}

export interface ChatRequest extends Sampling {
  model: string;
  messages: ChatMessage[];
  stream: boolean;
  /** `stream_options.include_usage`: a last chunk with `usage` before `[DONE]`. */
  includeUsage: boolean;
}

export interface CompletionRequest extends Sampling {
  model: string;
  prompt: string;
  stream: boolean;
  includeUsage: boolean;
}

export interface EmbeddingRequest {
  model: string;
  input: string[];
  encoding: 'float' | 'base64';
}

/** OpenAI's own limits: 4 stop sequences, 2048 embedding inputs. mpk allows a few more stops. */
const MAX_STOP = 16;
const MAX_INPUTS = 2048;

type Body = Record<string, unknown>;

function object(body: unknown): Body {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw badField('body', 'the request body must be a JSON object');
  }
  return body as Body;
}

/** A reference: a 255-character name, a tag of 128, a sha512 digest, with room to spare. */
const MAX_MODEL_NAME = 512;

const present = (v: unknown): boolean => v !== undefined && v !== null;

function model(b: Body): string {
  const m = b.model;
  if (!present(m)) throw badField('model', 'required: the reference of a model in the store (GET /v1/models lists them)');
  if (typeof m !== 'string' || m.trim() === '') throw badField('model', 'must be a non-empty string');
  if (m.length > MAX_MODEL_NAME) throw badField('model', `is ${m.length} characters; a reference has at most ${MAX_MODEL_NAME}`);
  return m.trim();
}

function bool(b: Body, key: string): boolean {
  const v = b[key];
  if (!present(v)) return false;
  if (typeof v !== 'boolean') throw badField(key, `must be true or false, not ${JSON.stringify(v)}`);
  return v;
}

function number(b: Body, key: string, min: number, max: number): number | undefined {
  const v = b[key];
  if (!present(v)) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw badField(key, `must be a number, not ${JSON.stringify(v)}`);
  if (v < min || v > max) throw badField(key, `must be between ${min} and ${max}, not ${v}`);
  return v;
}

function integer(b: Body, key: string, min: number): number | undefined {
  const v = b[key];
  if (!present(v)) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw badField(key, `must be a whole number, not ${JSON.stringify(v)}`);
  if (v < min) throw badField(key, `must be at least ${min}, not ${v}`);
  return v;
}

function stop(b: Body): string[] | undefined {
  const v = b.stop;
  if (!present(v)) return undefined;
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list)) throw badField('stop', 'must be a string or an array of strings');
  if (list.length > MAX_STOP) throw badField('stop', `at most ${MAX_STOP} sequences, not ${list.length}`);
  list.forEach((s, i) => {
    if (typeof s !== 'string' || s === '') throw badField(typeof v === 'string' ? 'stop' : `stop[${i}]`, 'must be a non-empty string');
  });
  return list.length > 0 ? (list as string[]) : undefined;
}

/** Refuses a field that is present with a value other than the allowed ones. */
function refuse(b: Body, key: string, allowed: (v: unknown) => boolean, why: string): void {
  if (present(b[key]) && !allowed(b[key])) throw badField(key, why);
}

function sampling(b: Body): Sampling {
  const out: Sampling = {};
  // max_completion_tokens replaces the deprecated max_tokens; either is honoured.
  const max = integer(b, 'max_completion_tokens', 1) ?? integer(b, 'max_tokens', 1);
  if (max !== undefined) out.maxTokens = max;
  const temperature = number(b, 'temperature', 0, 2);
  if (temperature !== undefined) out.temperature = temperature;
  const topP = number(b, 'top_p', 0, 1);
  if (topP !== undefined) out.topP = topP;
  const seed = integer(b, 'seed', Number.MIN_SAFE_INTEGER);
  // The engine takes a 32-bit seed; OpenAI allows any 64-bit one. Folded, so each stays deterministic.
  if (seed !== undefined) out.seed = ((seed % 2 ** 32) + 2 ** 32) % 2 ** 32;
  const s = stop(b);
  if (s) out.stop = s;
  refuse(b, 'n', (v) => v === 1, 'only n=1 is supported (one choice per request)');
  refuse(b, 'logprobs', (v) => v === false, 'log probabilities are not supported');
  return out;
}

function streaming(b: Body): { stream: boolean; includeUsage: boolean } {
  const stream = bool(b, 'stream');
  const so = b.stream_options;
  let includeUsage = false;
  if (present(so)) {
    if (typeof so !== 'object' || Array.isArray(so)) throw badField('stream_options', 'must be an object');
    const iu = (so as Body).include_usage;
    if (present(iu) && typeof iu !== 'boolean') throw badField('stream_options.include_usage', 'must be true or false');
    includeUsage = iu === true;
  }
  return { stream, includeUsage };
}

const ROLES: Record<string, ChatMessage['role']> = { system: 'system', developer: 'system', user: 'user', assistant: 'assistant' };

function messageContent(v: unknown, where: string, role: string): string {
  if (typeof v === 'string') return v;
  if (v === null || v === undefined) {
    if (role === 'assistant') return '';
    throw badField(where, 'required');
  }
  if (!Array.isArray(v)) throw badField(where, 'must be a string or an array of content parts');
  return v
    .map((part, i) => {
      const p = part as Body;
      if (typeof part !== 'object' || part === null || typeof p.type !== 'string') throw badField(`${where}[${i}]`, 'must be a content part {"type":"text","text":…}');
      if (p.type !== 'text') throw badField(`${where}[${i}].type`, `${JSON.stringify(p.type)} parts are not supported: only text`);
      if (typeof p.text !== 'string') throw badField(`${where}[${i}].text`, 'must be a string');
      return p.text;
    })
    .join('');
}

function messages(b: Body): ChatMessage[] {
  const v = b.messages;
  if (!present(v)) throw badField('messages', 'required: a non-empty array of {role, content}');
  if (!Array.isArray(v) || v.length === 0) throw badField('messages', 'must be a non-empty array of {role, content}');
  return v.map((m, i) => {
    if (typeof m !== 'object' || m === null || Array.isArray(m)) throw badField(`messages[${i}]`, 'must be an object {role, content}');
    const msg = m as Body;
    if (typeof msg.role !== 'string') throw badField(`messages[${i}].role`, 'must be a string');
    const role = ROLES[msg.role];
    if (!role) throw badField(`messages[${i}].role`, `${JSON.stringify(msg.role)} is not supported: system, developer, user or assistant`);
    return { role, content: messageContent(msg.content, `messages[${i}].content`, msg.role) };
  });
}

export function parseChatRequest(body: unknown): ChatRequest {
  const b = object(body);
  const out: ChatRequest = { model: model(b), messages: messages(b), ...streaming(b), ...sampling(b) };
  refuse(b, 'tools', (v) => Array.isArray(v) && v.length === 0, 'tools (function calling) are not supported');
  refuse(b, 'functions', (v) => Array.isArray(v) && v.length === 0, 'functions are not supported');
  refuse(b, 'response_format', (v) => (v as Body)?.type === 'text', 'only {"type":"text"} is supported');
  return out;
}

export function parseCompletionRequest(body: unknown): CompletionRequest {
  const b = object(body);
  const m = model(b);
  const p = b.prompt;
  let prompt: string;
  if (typeof p === 'string') prompt = p;
  else if (Array.isArray(p) && p.length === 1 && typeof p[0] === 'string') prompt = p[0];
  else if (!present(p)) throw badField('prompt', 'required: a string');
  else throw badField('prompt', 'must be a string (or an array of one string)');
  refuse(b, 'echo', (v) => v === false, 'echo is not supported');
  refuse(b, 'suffix', (v) => v === '', 'suffix (insertion) is not supported');
  refuse(b, 'best_of', (v) => v === 1, 'only best_of=1 is supported');
  return { model: m, prompt, ...streaming(b), ...sampling(b) };
}

export function parseEmbeddingRequest(body: unknown): EmbeddingRequest {
  const b = object(body);
  const m = model(b);
  const v = b.input;
  if (!present(v)) throw badField('input', 'required: a string or an array of strings');
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.length === 0) throw badField('input', 'must be a string or a non-empty array of strings');
  if (list.length > MAX_INPUTS) throw badField('input', `at most ${MAX_INPUTS} inputs, not ${list.length}`);
  list.forEach((s, i) => {
    const where = typeof v === 'string' ? 'input' : `input[${i}]`;
    if (typeof s !== 'string') throw badField(where, typeof s === 'number' || Array.isArray(s) ? 'token arrays are not supported: give text' : 'must be a string');
    if (s === '') throw badField(where, 'must not be empty');
  });
  const enc = b.encoding_format;
  if (present(enc) && enc !== 'float' && enc !== 'base64') throw badField('encoding_format', `must be "float" or "base64", not ${JSON.stringify(enc)}`);
  refuse(b, 'dimensions', () => false, 'choosing the dimensions is not supported: the model gives its own');
  return { model: m, input: list as string[], encoding: enc === 'base64' ? 'base64' : 'float' };
}
