/**
 * OpenAI-style error answers: `{"error":{"message","type","param","code"}}` with an HTTP status.
 * `ApiError` is what the HTTP layer throws; `toApiError()` maps the library's PackError codes
 * (unknown model, context overflow, a full queue, a missing engine, …) onto statuses, and keeps
 * the hint in the message so a client shows what to do.
 */
import { findPackError, type ErrorCode } from '../errors.js';

export type ApiErrorType = 'invalid_request_error' | 'authentication_error' | 'rate_limit_error' | 'server_error' | 'not_found_error' | 'permission_error';

export interface ApiErrorBody {
  error: { message: string; type: ApiErrorType; param: string | null; code: string | null };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: ApiErrorType = status >= 500 ? 'server_error' : 'invalid_request_error',
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }

  body(): ApiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** A request field that is missing or of the wrong type: 400 naming the field. */
export function badField(param: string, message: string): ApiError {
  return new ApiError(400, `${param}: ${message}`, 'invalid_request_error', param, 'invalid_value');
}

/** Seconds a client refused for a full queue is told to wait. */
export const RETRY_AFTER_SECONDS = 1;

/**
 * Any error → an ApiError. `param` names the request field the error is about (`model` for an
 * unknown model, `messages`/`prompt`/`input` for a context overflow).
 */
export function toApiError(err: unknown, where: { promptParam?: string } = {}): ApiError {
  if (err instanceof ApiError) return err;
  const pe = findPackError(err);
  if (!pe) return new ApiError(500, `internal error: ${(err as Error)?.message ?? String(err)}`, 'server_error', null, 'internal_error');
  const message = pe.hint ? `${pe.message.replace(/\.$/, '')}. Hint: ${pe.hint}` : pe.message;
  const m = MAPPING[pe.code] ?? DEFAULT;
  const param = m.param === 'model' ? 'model' : m.param === 'prompt' ? (where.promptParam ?? null) : null;
  const headers: Record<string, string> = pe.code === 'BUSY' ? { 'retry-after': String(RETRY_AFTER_SECONDS) } : {};
  return new ApiError(m.status, message, m.type, param, m.code, headers);
}

interface Mapped {
  status: number;
  type: ApiErrorType;
  code: string;
  param?: 'model' | 'prompt';
}

const DEFAULT: Mapped = { status: 500, type: 'server_error', code: 'internal_error' };

const MAPPING: Partial<Record<ErrorCode, Mapped>> = {
  NOT_FOUND: { status: 404, type: 'invalid_request_error', code: 'model_not_found', param: 'model' },
  INVALID_REFERENCE: { status: 404, type: 'invalid_request_error', code: 'model_not_found', param: 'model' },
  INVALID_DIGEST: { status: 404, type: 'invalid_request_error', code: 'model_not_found', param: 'model' },
  UNSUPPORTED: { status: 400, type: 'invalid_request_error', code: 'model_not_supported', param: 'model' },
  USAGE: { status: 400, type: 'invalid_request_error', code: 'invalid_value' },
  CONTEXT_OVERFLOW: { status: 400, type: 'invalid_request_error', code: 'context_length_exceeded', param: 'prompt' },
  SIZE_EXCEEDS_LIMIT: { status: 413, type: 'invalid_request_error', code: 'request_too_large' },
  BUSY: { status: 429, type: 'rate_limit_error', code: 'rate_limit_exceeded' },
  ENGINE_MISSING: { status: 503, type: 'server_error', code: 'engine_missing' },
  ENGINE: { status: 500, type: 'server_error', code: 'engine_error' },
  CORRUPT: { status: 500, type: 'server_error', code: 'model_corrupt' },
  DIGEST_MISMATCH: { status: 500, type: 'server_error', code: 'model_corrupt' },
  IO: { status: 500, type: 'server_error', code: 'io_error' },
  ABORTED: { status: 503, type: 'server_error', code: 'aborted' },
};
