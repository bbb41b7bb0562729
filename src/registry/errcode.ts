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
  const said = first ? `${first.code}${first.message ? `: ${first.message}` : ''}` : undefined;
  let code: ErrorCode = (first && BY_SPEC[first.code]) || 'REGISTRY';
  let hint: string | undefined;
  if (status === 403) {
    // Say who is denied what: "user "bob" may not pull team/m", not "HTTP 403 (HTTP 403)".
    const repo = /^\/v2\/(.+?)\/(?:manifests|blobs|tags|referrers)\//.exec(res.url.pathname)?.[1];
    const action = method === 'GET' || method === 'HEAD' ? 'pull' : method === 'DELETE' ? 'delete' : 'push';
    const err = deniedError(what, res.url.host, res.identity ?? 'these credentials', repo ? `${action} ${decodeURIComponent(repo)}` : `${method} ${res.url.pathname}`, `HTTP 403${said ? ` ${said}` : ''}`, true);
    return new RegistryError('DENIED', err.message, method, url, status, errors, err.hint);
  }
  if (status === 507) {
    // mpk serve (and other registries) answer a full disk with 507 Insufficient Storage
    const detail = (first?.detail as { reason?: unknown } | undefined)?.reason;
    return new RegistryError('REGISTRY', `${what}: registry out of space (HTTP 507${typeof detail === 'string' ? `: ${detail}` : ''})`, method, url, status, errors, "the registry's disk is full: its admin must free space (e.g. mpk serve gc), then push again");
  }
  if (status === 401) {
    code = 'UNAUTHORIZED';
    hint = `log in with: mpk login ${res.url.host}`;
  } else if (status === 404 && code === 'REGISTRY') {
    code = 'NOT_FOUND';
  } else if (status === 429) {
    code = 'REGISTRY';
    hint = 'the registry is rate-limiting; wait and run the command again';
  } else if (status >= 500) {
    hint = 'the registry failed; run the command again later (it resumes)';
  }
  return new RegistryError(code, `${what}: ${said ? `${said} (HTTP ${status})` : `HTTP ${status}`}`, method, url, status, errors, hint);
}

/**
 * Access refused to an identity (`user "bob"`, `anonymous`): `what` is `pull team/m` (mayNot) or
 * `pull,push on team/m` (a token that was not granted it). The hint says how to get access.
 */
export function deniedError(subject: string, host: string, who: string, what: string, detail: string, mayNot = false): PackError {
  const message = `${subject}: access denied: ${who === 'anonymous' ? 'anonymous users' : who} ${mayNot ? 'may not' : 'was not granted'} ${what} (${detail})`;
  const login = `mpk login ${host} -u USER`;
  const hint = who === 'anonymous' ? `log in as a user who may: ${login}` : `ask the registry admin for access, or log in as a user who may (${login})`;
  return new PackError('DENIED', message, { hint });
}
