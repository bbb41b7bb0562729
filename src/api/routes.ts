/**
 * The API's routes: `GET /v1/models[/{model}]`, `POST /v1/chat/completions`, `POST
 * /v1/completions`, `POST /v1/embeddings`. Docker Model Runner's prefixes (`/engines/v1/…`,
 * `/engines/llama.cpp/v1/…`) lead to the same routes, so its clients work unchanged. An unknown
 * path is 404, a known one with another method 405 with `Allow`.
 */
import type { Handler } from './call.js';
import { chatCompletions, completions } from './generate.js';
import { ApiError, toApiError } from './errors.js';
import { readJson, sendJson } from './http.js';
import { parseEmbeddingRequest } from './openai-types.js';

export interface Route {
  method: 'GET' | 'POST';
  handler: Handler;
}

const listModels: Handler = async (deps, call) => {
  const models = await deps.catalog.list();
  call.note.models = models.length;
  sendJson(call.res, 200, { object: 'list', data: models.map((m) => ({ id: m.reference, object: 'model', created: m.created, owned_by: 'mpk' })) });
};

function getModel(id: string): Handler {
  return async (deps, call) => {
    call.note.model = id;
    const created = await deps.catalog.runnable(id).then(() => deps.catalog.created(id));
    sendJson(call.res, 200, { id, object: 'model', created, owned_by: 'mpk' });
  };
}

const embeddings: Handler = async (deps, call) => {
  const r = parseEmbeddingRequest(await readJson(call.req, deps.maxBody));
  call.note.model = r.model;
  const lease = await deps.pool.acquire(r.model, call.signal);
  try {
    const data: { object: 'embedding'; index: number; embedding: number[] | string }[] = [];
    let tokens = 0;
    for (const [index, text] of r.input.entries()) {
      call.signal.throwIfAborted();
      const e = await lease.model.embed(text).catch((err: unknown) => {
        throw toApiError(err, { promptParam: r.input.length === 1 ? 'input' : `input[${index}]` });
      });
      tokens += e.tokens;
      data.push({ object: 'embedding', index, embedding: r.encoding === 'base64' ? Buffer.from(new Float32Array(e.vector).buffer).toString('base64') : e.vector });
    }
    call.note.tokens = tokens;
    sendJson(call.res, 200, { object: 'list', data, model: r.model, usage: { prompt_tokens: tokens, total_tokens: tokens } });
  } finally {
    lease.release();
  }
};

const ROUTES: Record<string, Route> = {
  '/v1/models': { method: 'GET', handler: listModels },
  '/v1/chat/completions': { method: 'POST', handler: chatCompletions },
  '/v1/completions': { method: 'POST', handler: completions },
  '/v1/embeddings': { method: 'POST', handler: embeddings },
};

const PREFIXES = ['/engines/llama.cpp/v1/', '/engines/v1/'];

/** The route of a request path (its query string already cut), or an ApiError (404/405). */
export function route(method: string, rawPath: string): Handler {
  let path = rawPath.length > 1 ? rawPath.replace(/\/+$/, '') : rawPath;
  for (const p of PREFIXES) if (path.startsWith(p)) path = `/v1/${path.slice(p.length)}`;
  let r = ROUTES[path];
  if (!r && path.startsWith('/v1/models/')) {
    let id: string;
    try {
      id = decodeURIComponent(path.slice('/v1/models/'.length));
    } catch {
      throw new ApiError(404, `${rawPath}: not a model id`, 'invalid_request_error', null, 'not_found');
    }
    r = { method: 'GET', handler: getModel(id) };
  }
  if (!r) throw new ApiError(404, `${method} ${rawPath}: no such endpoint; mpk answers GET /v1/models, POST /v1/chat/completions, /v1/completions and /v1/embeddings`, 'invalid_request_error', null, 'not_found');
  if (method !== r.method) throw new ApiError(405, `${method} ${path}: method not allowed; use ${r.method}`, 'invalid_request_error', null, 'method_not_allowed', { allow: r.method });
  return r.handler;
}

