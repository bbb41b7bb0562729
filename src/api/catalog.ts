/**
 * The store's models as the API sees them: a request's `model` → a Runnable, and the listing of
 * `GET /v1/models` (every tagged model an engine can run, i.e. with a GGUF model weight). What
 * was learnt about a manifest is kept by its digest (content never changes under a digest), so a
 * request reads only `index.json` once a model is known, not its GGUF header again.
 */
import { findPackError } from '../errors.js';
import { loadModel } from '../interop/load-model.js';
import { resolveRunnable, type Runnable } from '../run/runnable.js';
import type { LocalStore } from '../store/store.js';

export interface CatalogEntry {
  /** The store reference (`name:tag`): what a request's `model` names. */
  reference: string;
  digest: string;
  /** Unix seconds of the config's creation time; 0 when it has none. */
  created: number;
}

interface Known {
  runnable?: Omit<Runnable, 'reference'>;
  /** Why it is not runnable (UNSUPPORTED, a missing blob …). */
  error?: unknown;
  created: number;
}

/** Manifests remembered; past this the memory is cleared (a store rarely holds so many). */
const MAX_KNOWN = 1024;

export class Catalog {
  private readonly known = new Map<string, Known>();
  private readonly learning = new Map<string, Promise<Known>>();

  constructor(private readonly store: LocalStore) {}

  /** The model `reference` names, ready to load. NOT_FOUND / UNSUPPORTED as resolveRunnable throws them. */
  async runnable(reference: string): Promise<Runnable> {
    const desc = await this.store.resolve(reference);
    const k = await this.learn(reference, desc.digest);
    if (!k.runnable) throw k.error;
    return { ...k.runnable, reference };
  }

  /** Unix seconds of a model's creation time (0 when unknown). */
  async created(reference: string): Promise<number> {
    const desc = await this.store.resolve(reference);
    return (await this.learn(reference, desc.digest)).created;
  }

  /** Every tagged model the engine can run, sorted by reference. */
  async list(): Promise<CatalogEntry[]> {
    const out: CatalogEntry[] = [];
    for (const e of await this.store.list()) {
      // A model that cannot be read now (removed meanwhile, a blob missing) is left out, not fatal.
      const k = await this.learn(e.reference, e.descriptor.digest).catch(() => undefined);
      if (k?.runnable) out.push({ reference: e.reference, digest: e.descriptor.digest, created: k.created });
    }
    return out;
  }

  /** One resolve per digest at a time: simultaneous first requests share it. */
  private learn(reference: string, digest: string): Promise<Known> {
    const hit = this.known.get(digest);
    if (hit) return Promise.resolve(hit);
    let p = this.learning.get(digest);
    if (!p) {
      p = this.resolveKnown(reference, digest).finally(() => this.learning.delete(digest));
      this.learning.set(digest, p);
    }
    return p;
  }

  private async resolveKnown(reference: string, digest: string): Promise<Known> {
    const k: Known = { created: await createdOf(this.store, reference) };
    try {
      const { reference: _r, ...rest } = await resolveRunnable(this.store, reference);
      k.runnable = rest;
    } catch (e) {
      // Only "not a GGUF model" is a property of the manifest; anything else (a blob missing, an
      // I/O error) may be different next time, so it is not remembered.
      if (findPackError(e)?.code !== 'UNSUPPORTED') throw e;
      k.error = e;
    }
    if (this.known.size >= MAX_KNOWN) this.known.clear();
    this.known.set(digest, k);
    return k;
  }
}

async function createdOf(store: LocalStore, reference: string): Promise<number> {
  try {
    const created = (await loadModel(store, reference)).meta.created;
    const ms = created ? Date.parse(created) : NaN;
    return Number.isFinite(ms) ? Math.floor(ms / 1000) : 0;
  } catch {
    return 0; // an index, or a config that cannot be read: no time to show
  }
}
