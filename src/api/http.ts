/**
 * HTTP plumbing of the API: JSON bodies read with a bound (413 past it), JSON answers, and error
 * answers in OpenAI's shape. A body over the bound is still read (and dropped) up to a larger
 * drain limit, so the client gets its 413 instead of a connection reset mid-upload.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError } from './errors.js';

/** Request bodies mpk reads: 4 MiB holds a context of 100k+ tokens of text. */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;
/** Past the bound, bytes read and thrown away before answering; more and the connection is cut. */
const DRAIN_BYTES = 64 * 1024 * 1024;

function tooLarge(max: number): ApiError {
  return new ApiError(413, `the request body is larger than ${max} bytes`, 'invalid_request_error', null, 'request_too_large');
}

/** Reads and parses a JSON body of at most `max` bytes. */
export async function readJson(req: IncomingMessage, max = MAX_BODY_BYTES): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > DRAIN_BYTES) throw Object.assign(tooLarge(max), { closeConnection: true });
  const bytes = await new Promise<Buffer | undefined>((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= max) parts.push(c);
      else if (size > DRAIN_BYTES) {
        req.pause();
        reject(Object.assign(tooLarge(max), { closeConnection: true }));
      }
    });
    req.on('end', () => resolve(size <= max ? Buffer.concat(parts, size) : undefined));
    req.on('error', reject);
    req.on('aborted', () => reject(new ApiError(400, 'the request body ended early', 'invalid_request_error', null, 'body_incomplete')));
  });
  if (!bytes) throw tooLarge(max);
  if (bytes.length === 0) throw new ApiError(400, 'the request has no body: send a JSON object', 'invalid_request_error', null, 'invalid_json');
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch (e) {
    throw new ApiError(400, `the request body is not valid JSON: ${(e as Error).message}`, 'invalid_request_error', null, 'invalid_json');
  }
}

export function sendJson(res: ServerResponse, status: number, doc: unknown, headers: Record<string, string> = {}): void {
  if (res.destroyed) return; // the client left
  const body = Buffer.from(JSON.stringify(doc));
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
}

/** An error answer; a response already under way is cut instead (its status has gone out). */
export function sendError(req: IncomingMessage, res: ServerResponse, err: ApiError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  // An unread body is read and dropped by node after the answer (the connection stays usable);
  // only a body past the drain limit gets the connection closed under it.
  const close = (err as { closeConnection?: boolean }).closeConnection === true;
  sendJson(res, err.status, err.body(), { ...err.headers, ...(close ? { connection: 'close' } : {}) });
  if (close) res.once('finish', () => req.destroy());
}
