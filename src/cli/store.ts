/** Opens the store a command works on, and closes it (releasing its lease) when done. */
import { resolve } from 'node:path';
import { LocalStore, defaultStoreRoot } from '../store/store.js';
import type { Ctx } from './context.js';

export async function withStore<T>(ctx: Ctx, fn: (store: LocalStore) => Promise<T>): Promise<T> {
  const store = await LocalStore.open(ctx.storeRoot ? resolve(ctx.cwd, ctx.storeRoot) : defaultStoreRoot(ctx.env));
  // On stderr, so that --json output stays clean: a typo in --store is seen at once.
  if (store.created) ctx.stderr.write(`mpk: created a new store at ${store.root}\n`);
  try {
    return await fn(store);
  } finally {
    store.close();
  }
}
