/**
 * A fixed set of items (a context's sequences) lent one caller at a time: `use` waits for a free
 * one (first come, first served), gives up if its signal aborts while waiting, and always gives
 * the item back.
 */
import { PackError } from '../errors.js';

export class SlotPool<T> {
  private readonly free: T[];
  private readonly waiters: Array<{ resolve: (item: T) => void; reject: (e: unknown) => void }> = [];
  private closed = false;
  readonly size: number;

  constructor(items: T[]) {
    this.free = [...items];
    this.size = items.length;
  }

  /** Callers waiting for an item. */
  get waiting(): number {
    return this.waiters.length;
  }

  /** Items lent out now. */
  get busy(): number {
    return this.size - this.free.length;
  }

  async use<R>(signal: AbortSignal | undefined, fn: (item: T) => Promise<R>): Promise<R> {
    const item = await this.take(signal);
    try {
      return await fn(item);
    } finally {
      this.give(item);
    }
  }

  close(): void {
    this.closed = true;
    for (const w of this.waiters.splice(0)) w.reject(new PackError('ABORTED', 'the model was unloaded'));
  }

  private take(signal: AbortSignal | undefined): Promise<T> {
    if (this.closed) return Promise.reject(new PackError('ABORTED', 'the model was unloaded'));
    signal?.throwIfAborted();
    const item = this.free.pop();
    if (item !== undefined) return Promise.resolve(item);
    return new Promise<T>((resolve, reject) => {
      const waiter = {
        resolve: (i: T) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(i);
        },
        reject: (e: unknown) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      const onAbort = () => {
        const at = this.waiters.indexOf(waiter);
        if (at >= 0) this.waiters.splice(at, 1);
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  private give(item: T): void {
    const next = this.waiters.shift();
    if (next) next.resolve(item);
    else this.free.push(item);
  }
}
