/**
 * One request body cut into S3 multipart parts as it arrives: the bytes a session held under the
 * part minimum (`head`) go first, then the body; each full part (8 MiB, growing by 8 MiB every
 * 1000 parts: 10,000 parts hold 430 GiB) is uploaded while the body is paused past 4 parts in
 * flight. What is left at the end is sent as a part when it reaches S3's 5 MiB minimum, else given
 * back (`rest`) to be kept as the session's tail. A body longer or shorter than its declared length
 * is a 400 SIZE_INVALID; a client gone, a BodyInterrupted; either way what arrived is accounted for.
 */
import type { Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { BodyInterrupted, ServeError } from '../errors.js';
import type { Bucket } from './s3-client.js';

const MiB = 1024 * 1024;
/** S3's smallest part (all but the last). */
const MIN_PART = 5 * MiB;
const PARTS_IN_FLIGHT = 4;
const partSize = (n: number): number => 8 * MiB * (1 + Math.floor((n - 1) / 1000));

export interface Part {
  n: number;
  etag: string;
  size: number;
}

export interface PartsOptions {
  /** The multipart upload's object, and the upload if one was begun. */
  key: string;
  multipart: string | undefined;
  /** The number of the next part. */
  next: number;
  /** Bytes held from before, sent first. */
  head: Buffer | undefined;
  length: number | undefined;
  /** Sees every body byte in order. */
  hash: Hash | undefined;
  /** Given a function that stops the body (DELETE of the session), and undefined once it ended. */
  onAbort(fn: (() => void) | undefined): void;
}

export interface PartsResult {
  /** Body bytes taken (head not counted). */
  received: number;
  /** Parts uploaded now, by number. */
  parts: Part[];
  multipart: string | undefined;
  /** The bytes under the part minimum left at the end (head included). */
  rest: Buffer;
  /** How the body ended, if not well (thrown by the caller once what arrived is recorded). */
  failure: unknown;
}

/** Rejects when a part could not be uploaded (nothing of this request can then be recorded). */
export async function bodyToParts(bucket: Bucket, body: Readable, o: PartsOptions): Promise<PartsResult> {
  const parts: Part[] = [];
  let multipart = o.multipart;
  let next = o.next;
  const inflight = new Set<Promise<void>>();
  let partFailure: unknown;
  const sendPart = async (bytes: Buffer): Promise<void> => {
    multipart ??= await bucket.createMultipart(o.key);
    const n = next++;
    const p = bucket.uploadPart(o.key, multipart, n, bytes).then(
      (etag) => void parts.push({ n, etag, size: bytes.length }),
      (e: unknown) => void (partFailure ??= e),
    );
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
    while (inflight.size >= PARTS_IN_FLIGHT) await Promise.race(inflight);
    if (partFailure !== undefined) throw partFailure;
  };

  const headLength = o.head?.length ?? 0;
  let buf = Buffer.allocUnsafe(Math.max(partSize(next), headLength + MiB));
  let fill = 0;
  if (o.head) fill = o.head.copy(buf);
  let received = 0;
  const failure = await new Promise<unknown>((resolve) => {
    let done = false;
    const finish = (err?: unknown): void => {
      if (done) return;
      done = true;
      body.off('data', onData);
      o.onAbort(undefined);
      resolve(err);
    };
    const onData = (chunk: Buffer): void => {
      if (o.length !== undefined && received + chunk.length > o.length) return finish(sizeMismatch(o.length, 'more'));
      received += chunk.length;
      o.hash?.update(chunk);
      let c = chunk;
      while (c.length > 0) {
        const k = Math.min(c.length, buf.length - fill);
        c.copy(buf, fill, 0, k);
        fill += k;
        c = c.subarray(k);
        if (fill === buf.length) {
          const full = buf;
          buf = Buffer.allocUnsafe(partSize(next + 1));
          fill = 0;
          body.pause();
          sendPart(full).then(
            () => done || body.resume(),
            (e: unknown) => finish(e),
          );
        }
      }
    };
    if (body.destroyed) return finish(new BodyInterrupted('the client closed the connection'));
    body.on('data', onData);
    body.once('end', () => finish(o.length !== undefined && received !== o.length ? sizeMismatch(o.length, 'fewer') : undefined));
    body.once('close', () => finish(new BodyInterrupted('the client closed the connection')));
    body.once('error', (e) => finish(new BodyInterrupted(e.message)));
    o.onAbort(() => {
      finish(new BodyInterrupted('the upload was cancelled'));
      body.destroy();
    });
  });
  // What arrived is kept whole however the body ended: the session stays a prefix of the stream.
  while (inflight.size > 0) await Promise.race(inflight);
  if (partFailure === undefined && fill >= MIN_PART) {
    await sendPart(buf.subarray(0, fill)).catch((e: unknown) => void (partFailure ??= e));
    while (inflight.size > 0) await Promise.race(inflight);
    fill = 0;
  }
  if (partFailure !== undefined) throw partFailure;
  parts.sort((a, b) => a.n - b.n);
  return { received, parts, multipart, rest: Buffer.from(buf.subarray(0, fill)), failure };
}

function sizeMismatch(length: number, what: 'more' | 'fewer'): ServeError {
  return new ServeError(400, 'SIZE_INVALID', { reason: `the body has ${what} bytes than the ${length} its Content-Range or Content-Length declares` });
}
