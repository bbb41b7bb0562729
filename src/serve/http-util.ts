/**
 * Small HTTP helpers for the server: responses with the headers every /v2/ answer carries, error
 * bodies, bounded body reads, and the Range / Content-Range grammars (validated, never trusted).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BodyInterrupted, ServeError, errorBody, internalErrorBody } from './errors.js';

export const API_VERSION_HEADERS = {
  'docker-distribution-api-version': 'registry/2.0',
  'x-content-type-options': 'nosniff',
} as const;

export type Headers = Record<string, string | number | string[]>;

/** Sends a complete response (an empty body unless given). HEAD responses carry headers only. */
export function send(req: IncomingMessage, res: ServerResponse, status: number, headers: Headers = {}, body?: Buffer | string): void {
  const buf = body === undefined ? undefined : typeof body === 'string' ? Buffer.from(body) : body;
  res.writeHead(status, { ...API_VERSION_HEADERS, 'content-length': buf ? buf.length : 0, ...headers });
  if (buf && req.method !== 'HEAD') res.end(buf);
  else res.end();
}

export function sendJson(req: IncomingMessage, res: ServerResponse, status: number, doc: unknown, headers: Headers = {}): void {
  send(req, res, status, { 'content-type': 'application/json', ...headers }, JSON.stringify(doc));
}

/**
 * Answers an error. A request whose body was not read (an upload refused before it started) gets
 * `Connection: close`, so the client is not made to send gigabytes that will be thrown away.
 */
export function sendError(req: IncomingMessage, res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const unread = !req.complete && hasBody(req);
  const close: Headers = unread ? { connection: 'close' } : {};
  if (err instanceof ServeError) {
    send(req, res, err.status, { 'content-type': 'application/json', ...err.headers, ...close }, errorBody(err.code, err.detail, err.specMessage));
  } else {
    send(req, res, 500, { 'content-type': 'application/json', ...close }, internalErrorBody());
  }
  if (unread) res.once('finish', () => req.destroy());
}

export function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  if (len !== undefined) return len !== '0';
  return req.headers['transfer-encoding'] !== undefined;
}

/** Content-Length as a number (node has already refused malformed ones), or undefined. */
export function contentLength(req: IncomingMessage): number | undefined {
  const v = req.headers['content-length'];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new ServeError(400, 'SIZE_INVALID', { 'content-length': v });
  return n;
}

/** Reads a whole body of at most `max` bytes; more is 413 with `code`. */
export function readBody(req: IncomingMessage, max: number, code: 'MANIFEST_INVALID' | 'SIZE_INVALID' = 'MANIFEST_INVALID'): Promise<Buffer> {
  const declared = contentLength(req);
  const tooLarge = (): ServeError => new ServeError(413, code, { reason: `the body is larger than the ${max}-byte limit` });
  if (declared !== undefined && declared > max) return Promise.reject(tooLarge());
  // A client gone before the body was read: its 'close' already fired, so waiting would hang.
  if (req.destroyed) return Promise.reject(new BodyInterrupted('the client closed the connection'));
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (err?: unknown): void => {
      if (done) return;
      done = true;
      cleanup();
      if (err) reject(err);
      else resolve(Buffer.concat(parts, size));
    };
    const onData = (c: Buffer): void => {
      size += c.length;
      if (size > max) {
        finish(tooLarge());
        return;
      }
      parts.push(c);
    };
    const onEnd = (): void => finish();
    const onClose = (): void => finish(new ServeError(400, 'SIZE_INVALID', { reason: 'the request body ended early' }));
    const onError = (e: Error): void => finish(e);
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onClose);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('close', onClose);
    req.on('error', onError);
  });
}

/** A blob GET `Range: bytes=a-b | a- | -n` against `size`; undefined = whole blob; 'unsatisfiable'. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | undefined | 'unsatisfiable' {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined; // several ranges or junk: the whole blob (RFC 9110 allows ignoring)
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0 || size === 0) return 'unsatisfiable'; // an empty blob has no last bytes to give
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (!Number.isSafeInteger(start) || start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}

/** An upload `Content-Range: <start>-<end>` (inclusive; `bytes ` and `/total` tolerated). */
export function parseContentRange(header: string | undefined): { start: number; end: number } | undefined | 'invalid' {
  if (header === undefined) return undefined;
  const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(header.trim());
  if (!m) return 'invalid';
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end < start) return 'invalid';
  return { start, end };
}

/** The media type of a Content-Type header, without parameters. */
export function mediaTypeOf(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const t = header.split(';')[0]!.trim();
  return t === '' ? undefined : t;
}
