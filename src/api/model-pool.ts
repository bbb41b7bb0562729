/**
 * The models `mpk api` has loaded: each loads on first use (two requests for an unloaded model
 * load it once), and idle ones are unloaded least-recently-used past a budget (`maxModels`, and
 * `maxMemory` against the sum of the loaded models' weight bytes). A model in use is never
 * unloaded: the pool goes over budget for a while and trims itself when a model becomes idle.
 *
 * Requests to one model take one of its `parallel` sequences; the next ones wait their turn in a
 * bounded queue (turns.ts: past it BUSY, the API's 429). Models are keyed by manifest digest, so
 * two references to one model share it.
 */
import { PackError } from '../errors.js';
import type { Engine, EngineModel, LoadOptions } from '../engine/engine.js';
import { Turns } from './turns.js';

/** What the pool needs of a model in the store (src/run/runnable.ts's Runnable is one). */
export interface PoolRunnable {
  reference: string;
  digest: string;
  load: Omit<LoadOptions, 'threads' | 'signal' | 'parallel'>;
  weightBytes: number;
}

export interface PoolOptions<R extends PoolRunnable> {
  /** A reference → its model (NOT_FOUND / UNSUPPORTED errors pass through). */
  resolve(reference: string): Promise<R>;
  /** The engine, asked for once, on the first load (ENGINE_MISSING passes through; asked again later). */
  engine(): Promise<Engine>;
  /** CPU threads per model. */
  threads: number;
  /** Sequences that generate at once per model (default 1). */
  parallel?: number;
  /** Overrides every model's context size. */
  contextSize?: number;
  /** Models loaded at once (default 2). */
  maxModels?: number;
  /** Sum of the loaded models' weight bytes (default no limit). */
  maxMemory?: number;
  /** Requests waiting per model beyond those running (default 16). */
  queue?: number;
  log?: (line: string) => void;
}

export interface Lease<R> {
  model: EngineModel;
  /** The model as resolved for this request (its reference and defaults). */
  runnable: R;
  /** Gives the sequence back; idempotent. */
  release(): void;
}

export interface PoolModelStats {
  reference: string;
  digest: string;
  state: 'loading' | 'loaded' | 'unloaded';
  /** Requests holding a sequence (generating, or waiting for the load). */
  active: number;
  queued: number;
  weightBytes: number;
}

export interface PoolStats {
  models: PoolModelStats[];
  loads: number;
  unloads: number;
}

interface Entry<R> {
  runnable: R;
  model?: EngineModel;
  loading?: Promise<EngineModel>;
  /** Past makeRoom: its load counts against the budget (a load still waiting for room does not). */
  admitted?: boolean;
  turns: Turns;
  lastUsed: number;
}

export class ModelPool<R extends PoolRunnable> {
  private readonly entries = new Map<string, Entry<R>>();
  private engine: Promise<Engine> | undefined;
  private readonly closing = new AbortController();
  private readonly unloading = new Set<Promise<void>>();
  private clock = 0;
  private loads = 0;
  private unloads = 0;
  private readonly parallel: number;
  private readonly maxModels: number;
  private readonly maxMemory: number;
  private readonly queue: number;
  private idleWaiters: (() => void)[] = [];
  private roomWaiters: (() => void)[] = [];

  constructor(private readonly opts: PoolOptions<R>) {
    this.parallel = Math.max(1, opts.parallel ?? 1);
    this.maxModels = Math.max(1, opts.maxModels ?? 2);
    this.maxMemory = opts.maxMemory ?? Infinity;
    this.queue = Math.max(0, opts.queue ?? 16);
  }

  /** A sequence of the model `reference` names, loaded if needed. Release it when done. */
  async acquire(reference: string, signal?: AbortSignal): Promise<Lease<R>> {
    this.checkOpen();
    const runnable = await this.opts.resolve(reference);
    this.checkOpen();
    let e = this.entries.get(runnable.digest);
    if (!e) {
      const fresh: Entry<R> = { runnable, lastUsed: 0, turns: new Turns(this.parallel, this.queue, reference, () => this.settle(fresh)) };
      this.entries.set(runnable.digest, (e = fresh));
    }
    const entry = e;
    await entry.turns.take(signal);
    let model: EngineModel;
    try {
      model = await this.ensureLoaded(entry);
    } catch (err) {
      this.releaseSlot(entry);
      throw err;
    }
    entry.lastUsed = ++this.clock;
    let released = false;
    return {
      model,
      runnable,
      release: () => {
        if (released) return;
        released = true;
        entry.lastUsed = ++this.clock;
        this.releaseSlot(entry);
      },
    };
  }

  stats(): PoolStats {
    const models = [...this.entries.values()].map((e) => ({
      reference: e.runnable.reference,
      digest: e.runnable.digest,
      state: e.model ? ('loaded' as const) : e.loading ? ('loading' as const) : ('unloaded' as const),
      active: e.turns.active,
      queued: e.turns.queued,
      weightBytes: e.runnable.weightBytes,
    }));
    return { models, loads: this.loads, unloads: this.unloads };
  }

  /** Resolves when no request holds or waits for any model (tests: a cut client's generation ended). */
  idle(): Promise<void> {
    if (this.busy() === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /**
   * Refuses new requests, fails the queued ones, waits up to `graceMs` for running ones (their
   * clients are cut by the server's close, which aborts them), then unloads everything.
   */
  async close(graceMs = 10_000): Promise<void> {
    if (this.closing.signal.aborted) return;
    this.closing.abort();
    for (const r of this.roomWaiters.splice(0)) r();
    for (const e of this.entries.values()) e.turns.failAll(closedError());
    if (this.busy() > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.idle(), new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
    }
    const all = [...this.entries.values()];
    this.entries.clear();
    await Promise.allSettled(
      all.map(async (e) => {
        // A load under way sees the abort and unloads what it loaded itself.
        if (e.loading) await e.loading.catch(() => undefined);
        await e.model?.unload();
        e.model = undefined;
      }),
    );
    await Promise.allSettled([...this.unloading]);
    const engine = this.engine;
    this.engine = undefined;
    if (engine) await engine.then((en) => en.close()).catch(() => undefined);
  }

  private busy(): number {
    let n = 0;
    for (const e of this.entries.values()) n += e.turns.active + e.turns.queued;
    return n;
  }

  private checkOpen(): void {
    if (this.closing.signal.aborted) throw closedError();
  }

  private releaseSlot(e: Entry<R>): void {
    if (!e.turns.give()) this.settle(e);
  }

  /** After a model's last request: forget a failed entry, trim the budget, wake idle() waiters. */
  private settle(e: Entry<R>): void {
    this.maybeForget(e);
    if (e.turns.active === 0) this.trim();
    for (const r of this.roomWaiters.splice(0)) r(); // a load waiting for room looks again
    this.notifyIdle();
  }

  /** An entry whose load failed (or never started) and that nobody uses is dropped. */
  private maybeForget(e: Entry<R>): void {
    if (e.turns.active === 0 && e.turns.queued === 0 && !e.model && !e.loading && this.entries.get(e.runnable.digest) === e) {
      this.entries.delete(e.runnable.digest);
    }
  }

  private notifyIdle(): void {
    if (this.busy() > 0) return;
    for (const r of this.idleWaiters.splice(0)) r();
  }

  private ensureLoaded(e: Entry<R>): Promise<EngineModel> {
    if (e.model) return Promise.resolve(e.model);
    e.loading ??= (async () => {
      try {
        await this.makeRoom(e);
        e.admitted = true;
        // Memory an unload frees is wanted before the next model maps its weights.
        await Promise.allSettled([...this.unloading]);
        const engine = await this.getEngine();
        const { log } = this.opts;
        const started = Date.now();
        const model = await engine.load({
          ...e.runnable.load,
          ...(this.opts.contextSize ? { contextSize: this.opts.contextSize } : {}),
          threads: this.opts.threads,
          parallel: this.parallel,
          signal: this.closing.signal,
        });
        this.loads++;
        for (const w of model.warnings) log?.(`${e.runnable.reference}: ${w}`);
        log?.(`loaded ${e.runnable.reference} (${e.runnable.digest.slice(0, 19)}, context ${model.contextSize} tokens) in ${Date.now() - started} ms`);
        if (this.closing.signal.aborted) {
          await model.unload().catch(() => undefined);
          throw closedError();
        }
        e.model = model;
        return model;
      } finally {
        e.loading = undefined;
        e.admitted = false;
      }
    })();
    return e.loading;
  }

  private getEngine(): Promise<Engine> {
    if (!this.engine) {
      const p = this.opts.engine();
      this.engine = p;
      // A missing engine is asked for again next time (it may have been installed meanwhile).
      p.catch(() => {
        if (this.engine === p) this.engine = undefined;
      });
    }
    return this.engine;
  }

  /**
   * Unloads idle models, least recently used first, until `incoming` fits the budget. When the
   * models in the way are all busy, the load waits until one is idle (the budget is a limit, not
   * a wish: N requests for N models at once must not load N models). A model larger than the
   * whole budget loads alone.
   */
  private async makeRoom(incoming: Entry<R>): Promise<void> {
    const over = (count: number, bytes: number) => count + 1 > this.maxModels || bytes + incoming.runnable.weightBytes > this.maxMemory;
    for (;;) {
      this.checkOpen();
      if (this.evictWhile(over, incoming)) return;
      await new Promise<void>((r) => this.roomWaiters.push(r));
    }
  }

  /** After a model became idle: back within the budget if a busy one pushed the pool over it. */
  private trim(): void {
    this.evictWhile((count, bytes) => count > this.maxModels || bytes > this.maxMemory);
  }

  /** True when within the budget (or nothing else is resident); false when busy models are in the way. */
  private evictWhile(over: (count: number, bytes: number) => boolean, except?: Entry<R>): boolean {
    for (;;) {
      const resident = [...this.entries.values()].filter((x) => x !== except && (x.model || x.admitted));
      const bytes = resident.reduce((n, x) => n + x.runnable.weightBytes, 0);
      if (!over(resident.length, bytes) || resident.length === 0) return true;
      const victim = resident.filter((x) => x.model && !x.loading && x.turns.active === 0 && x.turns.queued === 0).sort((a, b) => a.lastUsed - b.lastUsed)[0];
      if (!victim) return false; // every model is busy: over budget until one is idle
      this.unload(victim);
    }
  }

  private unload(e: Entry<R>): void {
    this.entries.delete(e.runnable.digest);
    const model = e.model!;
    e.model = undefined;
    this.unloads++;
    this.opts.log?.(`unloaded ${e.runnable.reference} (least recently used)`);
    const p = model
      .unload()
      .catch((err: unknown) => this.opts.log?.(`unloading ${e.runnable.reference}: ${(err as Error)?.message ?? String(err)}`))
      .finally(() => this.unloading.delete(p));
    this.unloading.add(p);
  }
}

function closedError(): PackError {
  return new PackError('ABORTED', 'the server is shutting down', { hint: 'retry when it is back' });
}
