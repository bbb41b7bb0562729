/**
 * One request body appended to an upload session's data file, in order: paused while the file's
 * queue or the hash worker is behind, cut when it brings more bytes than declared, when it comes
 * slower than the minimum upload rate, or when the session is cancelled. What arrived is written
 * whole however the body ends, so the file is always a prefix of the stream (the client resumes
 * from the session's size).
 */
import type { Readable } from 'node:stream';
import { BodyInterrupted, ServeError } from './errors.js';
import { FileAppender } from './file-appender.js';
import { RateWatch, tooSlow, type MinRate } from './min-rate.js';
import type { HashWorkers, Hashed } from './upload-hash.js';

/** The session, as the append sees it. */
export interface Target extends Hashed {
  /** Removed by its own request when that fails (a monolithic POST): nothing to resume. */
  readonly transient: boolean;
  /** Set while a body is being appended: stops it (DELETE of the session). */
  abort: (() => void) | undefined;
}

export interface BodyOptions {
  /** The file's size: where the body goes. */
  start: number;
  /** Content-Length, or the length of a Content-Range sent without one. */
  length?: number | undefined;
  workers: HashWorkers;
  minRate: MinRate;
  /** The headers of a 408 when the file holds `size` bytes (Location, Range). */
  resumeHeaders(size: number): Record<string, string>;
}

/**
 * Appends the body; resolves with the file's new size. With a length, a body of another length is
 * a 400 SIZE_INVALID: a chunk that would go past it is refused whole (the file never holds bytes
 * beyond the declared range), and what a shorter body brought is kept. A body slower than the
 * minimum rate is a 408 BLOB_UPLOAD_INVALID; a client gone, a BodyInterrupted.
 */
export async function appendBody(s: Target, body: Readable, o: BodyOptions): Promise<number> {
  const { start, length, workers } = o;
  const file = await FileAppender.open(s.data);
  // A client that left while this request waited (admission queue, sign-in, the disk) has a
  // destroyed body whose 'close' already fired: listening now would wait forever, holding the
  // session and the admission slot. (Nothing is awaited between this check and the listeners.)
  if (body.destroyed) {
    await file.end();
    throw new BodyInterrupted('the client closed the connection');
  }
  // A worker hash gets the bytes after they are in the file; an inline one before (onData).
  file.onWritten = (bufs) => {
    try {
      s.hash?.written?.(bufs);
    } catch {
      workers.release(s); // the hash missed bytes: the close hashes the file again
    }
  };
  let received = start;
  let failure: unknown;
  let slow: number | undefined; // the bytes of the last window, when cut for its rate
  await new Promise<void>((resolve) => {
    let done = false;
    const finish = (err?: unknown): void => {
      if (done) return;
      done = true;
      failure = err;
      watch?.stop();
      body.off('data', onData);
      resolve();
    };
    // Cut for its rate, the body is left unread: the answer (408) closes the connection.
    const watch =
      o.minRate.bytesPerSecond > 0
        ? new RateWatch(o.minRate, (got) => {
            slow = got;
            finish();
          })
        : undefined;
    // A failed write (a full disk) ends the append at once, even while the body is paused for the
    // file's queue: the body is left unread (the error answer closes the connection), not cut, so
    // the client gets that answer instead of a reset or a wait for the idle time-out.
    const failed = (e: unknown): void => {
      workers.release(s); // the hash saw bytes the file did not get
      finish(e);
      body.pause();
    };
    file.onFailure = failed;
    let full = false; // the file's queue is full
    const resume = (): void => {
      if (done || full) return;
      // A worker hash grows busy as batches are written, not only in onData: wait for it here too.
      if (s.hash?.busy) {
        s.hash.onRoom?.(resume);
        return;
      }
      watch?.release();
      body.resume();
    };
    const onData = (chunk: Buffer): void => {
      if (length !== undefined && received + chunk.length - start > length) {
        finish(sizeMismatch(length, 'more'));
        return;
      }
      received += chunk.length;
      watch?.add(chunk.length);
      if (s.hash && !s.hash.follower && received >= workers.minBytes && workers.free) {
        // Past the threshold, switch to a worker: it reads back what is written, then gets each
        // batch as it is written (file.onWritten), including those queued now.
        workers.follow(s, start + file.written);
      }
      s.hash?.update(chunk); // inline only: a worker hash gets the chunk once written
      try {
        full = !file.write(chunk);
      } catch (e) {
        failed(e);
        return;
      }
      if (full) {
        body.pause();
        watch?.hold();
        file.onDrain(() => {
          full = false;
          resume();
        });
      }
      if (s.hash?.busy) {
        body.pause();
        watch?.hold();
        s.hash.onRoom?.(resume);
      }
    };
    body.on('data', onData);
    body.once('end', () => finish(length !== undefined && received - start !== length ? sizeMismatch(length, 'fewer') : undefined));
    body.once('close', () => finish(new BodyInterrupted('the client closed the connection')));
    body.once('error', (e) => finish(new BodyInterrupted(e.message)));
    s.abort = () => {
      finish(new BodyInterrupted('the upload was cancelled'));
      body.destroy();
    };
  });
  // What arrived is written whole even when the client went away: the file stays a prefix of the stream.
  try {
    await file.end();
  } catch (e) {
    workers.release(s);
    throw e;
  }
  const size = start + file.written;
  if (slow !== undefined) throw tooSlow(o.minRate, slow, s.transient ? undefined : o.resumeHeaders(size));
  if (failure !== undefined) throw failure;
  return size;
}

function sizeMismatch(length: number, what: 'more' | 'fewer'): ServeError {
  return new ServeError(400, 'SIZE_INVALID', { reason: `the body has ${what} bytes than the ${length} its Content-Range or Content-Length declares` });
}
