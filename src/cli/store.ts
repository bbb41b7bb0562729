/** Opens the store a command works on, and closes it (releasing its lease) when done. */
import { LocalStore, defaultStoreRoot } from '../store/store.js';
import type { Ctx } from './context.js';

export async function withStore<T>(ctx: Ctx, fn: (store: LocalStore) => Promise<T>): Promise<T> {
  const store = await LocalStore.open(ctx.storeRoot ?? defaultStoreRoot(ctx.env));
  try {
    return await fn(store);
  } finally {
    store.close();
  }
}
