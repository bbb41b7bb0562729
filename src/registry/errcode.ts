/**
 * Registry error responses: the distribution-spec body `{"errors":[{code,message,detail}]}` read
 * into a RegistryError that keeps method, URL, status and the spec codes, and maps them onto mpk's
 * error codes (so the CLI picks the exit code) with a hint for the user.
 * Reference: https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#error-codes
 */
import { PackError, type ErrorCode } from '../errors.js';
import { readBody, type HttpResponse } from './transport.js';

export interface SpecError {
  code: string;
  message?: string;
  detail?: unknown;
}

export class RegistryError extends PackError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly method: string,
    readonly url: string,
    readonly status: number,
    readonly errors: SpecError[],
    hint?: string,
  ) {
    super(code, message, hint === undefined ? {} : { hint });
    this.name = 'RegistryError';
  }

  /** True when the registry named this spec error code. */
  has(specCode: string): boolean {
    return this.errors.some((e) => e.code === specCode);
  }
}

const BY_SPEC: Record<string, ErrorCode> = {
  BLOB_UNKNOWN: 'NOT_FOUND',
  MANIFEST_UNKNOWN: 'NOT_FOUND',
  NAME_UNKNOWN: 'NOT_FOUND',
  BLOB_UPLOAD_UNKNOWN: 'NOT_FOUND',
  DIGEST_INVALID: 'DIGEST_MISMATCH',
  SIZE_INVALID: 'SIZE_MISMATCH',
  MANIFEST_INVALID: 'INVALID_MANIFEST',
  MANIFEST_BLOB_UNKNOWN: 'INVALID_MANIFEST',
  NAME_INVALID: 'INVALID_REFERENCE',
  TAG_INVALID: 'INVALID_REFERENCE',
  UNAUTHORIZED: 'UNAUTHORIZED',
  DENIED: 'DENIED',
  UNSUPPORTED: 'UNSUPPORTED',
};

/** Reads an error response (at most 64 KiB of body) into a RegistryError. */
export async function responseError(method: string, res: HttpResponse, subject?: string): Promise<RegistryError> {
  let errors: SpecError[] = [];
  try {
    const body = method === 'HEAD' ? Buffer.alloc(0) : await readBody(res, 64 * 1024);
    const doc = JSON.parse(body.toString('utf8')) as { errors?: unknown };
    if (Array.isArray(doc.errors)) {
      errors = doc.errors
        .filter((e): e is SpecError => !!e && typeof (e as SpecError).code === 'string')
        .map((e) => ({ code: e.code, message: typeof e.message === 'string' ? e.message : undefined, detail: e.detail }));
    }
  } catch {
    res.body.destroy(); // not JSON (a proxy's HTML page, "404 page not found"): the status says enough
  }
  const status = res.status;
  const url = `${res.url.origin}${res.url.pathname}`;
  const what = subject ?? `${method} ${url}`;
  const first = errors[0];
  const said = first ? `${first.code}${first.message ? `: ${first.message}` : ''}` : `HTTP ${status}`;
  let code: ErrorCode = (first && BY_SPEC[first.code]) || 'REGISTRY';
  let hint: string | undefined;
  if (status === 401) {
    code = 'UNAUTHORIZED';
    hint = `log in with: mpk login ${res.url.host}`;
  } else if (status === 403) {
    code = 'DENIED';
    hint = 'these credentials may not do this here; ask the registry admin for access';
  } else if (status === 404 && code === 'REGISTRY') {
    code = 'NOT_FOUND';
  } else if (status === 429) {
    code = 'REGISTRY';
    hint = 'the registry is rate-limiting; wait and run the command again';
  } else if (status >= 500) {
    hint = 'the registry failed; run the command again later (it resumes)';
  }
  return new RegistryError(code, `${what}: ${said} (HTTP ${status})`, method, url, status, errors, hint);
}
