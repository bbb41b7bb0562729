/**
 * Distribution-spec error responses: `{"errors":[{code,message,detail}]}` with the spec's codes.
 * `message` is the spec's description of the code; what went wrong in particular goes in `detail`
 * (docker-registry does the same, and clients show both).
 * Reference: https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#error-codes
 */
import { findPackError } from '../errors.js';

export type SpecCode =
  | 'BLOB_UNKNOWN'
  | 'BLOB_UPLOAD_INVALID'
  | 'BLOB_UPLOAD_UNKNOWN'
  | 'DIGEST_INVALID'
  | 'MANIFEST_BLOB_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'NAME_INVALID'
  | 'NAME_UNKNOWN'
  | 'SIZE_INVALID'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'UNSUPPORTED'
  | 'TOOMANYREQUESTS'
  | 'UNKNOWN';

/** The spec's description of each code: the `message` of every error body. */
export const SPEC_MESSAGES: Record<SpecCode, string> = {
  BLOB_UNKNOWN: 'blob unknown to registry',
  BLOB_UPLOAD_INVALID: 'blob upload invalid',
  BLOB_UPLOAD_UNKNOWN: 'blob upload unknown to registry',
  DIGEST_INVALID: 'provided digest did not match uploaded content',
  MANIFEST_BLOB_UNKNOWN: 'manifest references a manifest or blob unknown to registry',
  MANIFEST_INVALID: 'manifest invalid',
  MANIFEST_UNKNOWN: 'manifest unknown to registry',
  NAME_INVALID: 'invalid repository name',
  NAME_UNKNOWN: 'repository name not known to registry',
  SIZE_INVALID: 'provided length did not match content length',
  UNAUTHORIZED: 'authentication required',
  DENIED: 'requested access to the resource is denied',
  UNSUPPORTED: 'the operation is unsupported',
  TOOMANYREQUESTS: 'too many requests',
  UNKNOWN: 'unknown error',
};

/**
 * An error answered to the client: HTTP status, spec code, detail and extra headers; `specMessage`
 * replaces the code's description where it would mislead (a malformed digest is not one that
 * "did not match uploaded content").
 */
export class ServeError extends Error {
  constructor(
    readonly status: number,
    readonly code: SpecCode,
    readonly detail: unknown = null,
    readonly headers: Record<string, string> = {},
    readonly specMessage: string = SPEC_MESSAGES[code],
  ) {
    super(`${status} ${code}: ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`);
    this.name = 'ServeError';
  }
}

/** The request body stopped before its end (client gone): nothing to answer. */
export class BodyInterrupted extends Error {}

export function errorBody(code: SpecCode, detail: unknown = null, message: string = SPEC_MESSAGES[code]): string {
  return JSON.stringify({ errors: [{ code, message, detail }] });
}

/** The body of a 5xx: not one of the spec's codes (they describe client errors). */
export function internalErrorBody(): string {
  return JSON.stringify({ errors: [{ code: 'UNKNOWN', message: 'internal server error', detail: null }] });
}

export const blobUnknown = (digest: string): ServeError => new ServeError(404, 'BLOB_UNKNOWN', { digest });
export const manifestUnknown = (reference: string): ServeError => new ServeError(404, 'MANIFEST_UNKNOWN', { reference });
export const nameUnknown = (name: string): ServeError => new ServeError(404, 'NAME_UNKNOWN', { name });
export const uploadUnknown = (id: string): ServeError => new ServeError(404, 'BLOB_UPLOAD_UNKNOWN', { uuid: id });
export const unsupported = (what: string, status = 405): ServeError => new ServeError(status, 'UNSUPPORTED', what);

/**
 * A digest from a request that does not parse (not `alg:hex`, an unknown algorithm, a wrong
 * length): 400 DIGEST_INVALID naming it, whose message says it is malformed.
 */
export function digestInvalid(digest: string, why?: unknown): ServeError {
  const reason = findPackError(why)?.message ?? 'not a sha256 or sha512 digest';
  return new ServeError(400, 'DIGEST_INVALID', { digest, reason }, {}, `malformed digest: ${reason}`);
}

/** A write failed for want of space (ENOSPC, or EDQUOT: a quota), anywhere in the cause chain. */
export function isOutOfSpace(e: unknown): boolean {
  for (let depth = 0; e && depth < 8; depth++) {
    const code = (e as { code?: unknown }).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * The registry's disk is full: 507 Insufficient Storage (RFC 4918 §11.5), the status made for it,
 * with code UNKNOWN, which every distribution client accepts (docker-registry answers a full disk
 * with 500 UNKNOWN and the driver's "no space left on device" in the detail). A client tells it by
 * the status (507) and shows the message, "registry out of space"; as a 5xx, generic clients
 * retry it, which is harmless: the request's own bytes were freed.
 */
export function outOfSpace(reason: string, extra: Record<string, unknown> = {}): ServeError {
  return new ServeError(507, 'UNKNOWN', { reason: `no space left on device: ${reason}`, ...extra }, {}, 'registry out of space');
}
