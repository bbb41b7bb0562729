/**
 * Turns at one model: `slots` requests at once, then a FIFO queue of at most `queue` waiting
 * ones, past which `take` fails BUSY (the API's 429). A waiter whose signal aborts (its client
 * left) leaves the queue and frees its place.
 */
import { PackError } from '../errors.js';

interface Waiter {
  resolve(): void;
  reject(e: unknown): void;
}

export class Turns {
  /** Turns held now. */
  active = 0;
  private readonly waiters: Waiter[] = [];

  constructor(
    private readonly slots: number,
    private readonly queue: number,
    private readonly name: string,
    /** Called when a waiter leaves the queue (the pool may then be idle). */
    private readonly onLeave: () => void = () => undefined,
  ) {}

  get queued(): number {
    return this.waiters.length;
  }

  take(signal?: AbortSignal): Promise<void> {
    if (this.active < this.slots && this.waiters.length === 0) {
      this.active++;
      return Promise.resolve();
    }
    if (this.waiters.length >= this.queue) {
      return Promise.reject(
        new PackError('BUSY', `${this.name}: ${this.active} requests running and ${this.waiters.length} waiting, the most this server queues`, {
          hint: 'retry after a moment, or start mpk api with a larger --queue or --parallel',
        }),
      );
    }
    if (signal?.aborted) return Promise.reject(gone());
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(gone());
        this.onLeave();
      };
      const w: Waiter = {
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      this.waiters.push(w);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Gives a turn back: to the first waiter if any (true), else it is free (false). */
  give(): boolean {
    const next = this.waiters.shift();
    if (next) {
      next.resolve();
      return true;
    }
    this.active--;
    return false;
  }

  /** Fails every waiter (the server is closing). */
  failAll(err: unknown): void {
    for (const w of this.waiters.splice(0)) w.reject(err);
  }
}

function gone(): PackError {
  return new PackError('ABORTED', 'the client went away before its turn');
}
