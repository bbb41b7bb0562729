/**
 * The minimum upload rate (`--min-upload-rate`): a blob body that brings fewer bytes than the rate
 * asks over a sliding window is cut, so a client trickling bytes cannot hold an admission slot
 * (`--max-uploads`) forever; the idle time-out only catches clients that send nothing at all.
 *
 * The window slides in quarter steps: at each step the bytes received since the step a window
 * ago are compared with rate × window (the first comparison a whole window after the body starts).
 * Time the server itself holds the body back (the disk or the hash worker behind) is not the
 * client's: while held, and until the next step after, nothing is measured.
 */
import { ServeError } from './errors.js';

const STEPS = 4;

export interface MinRate {
  /** Bytes per second; 0 = no minimum. */
  bytesPerSecond: number;
  windowMs: number;
}

export class RateWatch {
  private received = 0;
  /** `received` at each step of the current window, oldest first. */
  private marks: number[] = [0];
  private held = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly min: MinRate,
    /** Called once, with the bytes the last window brought. */
    private readonly onSlow: (bytesInWindow: number) => void,
  ) {
    this.timer = setInterval(() => this.step(), Math.max(1, min.windowMs / STEPS));
    this.timer.unref();
  }

  add(bytes: number): void {
    this.received += bytes;
  }

  /** The server paused the body: not the client's time. */
  hold(): void {
    this.held = true;
    this.marks.length = 0;
  }

  release(): void {
    this.held = false;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private step(): void {
    if (this.held) return;
    this.marks.push(this.received);
    if (this.marks.length <= STEPS) return;
    const got = this.received - this.marks.shift()!;
    if (got < (this.min.bytesPerSecond * this.min.windowMs) / 1000) {
      this.stop();
      this.onSlow(got);
    }
  }
}

/**
 * 408 for a body cut for its rate. The closest spec code is BLOB_UPLOAD_INVALID. `resume` (the
 * session's Location and Range) tells the client where to go on; without it (a monolithic POST,
 * whose session goes with its request) the blob must be sent again.
 */
export function tooSlow(min: MinRate, bytesInWindow: number, resume?: Record<string, string>): ServeError {
  const secs = min.windowMs / 1000;
  const rate = Math.floor(bytesInWindow / secs);
  const then = resume ? "what arrived is kept, resume from the upload's Range" : 'send the blob again';
  return new ServeError(
    408,
    'BLOB_UPLOAD_INVALID',
    { reason: `the body came at ${rate} bytes/s over ${secs} s, under the minimum upload rate of ${min.bytesPerSecond} bytes/s (--min-upload-rate); ${then}` },
    resume ?? {},
  );
}
