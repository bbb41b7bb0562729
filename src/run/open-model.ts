/**
 * `mpk run`'s library call: a stored model resolved (resolveRunnable), the engine started, the
 * weights mapped from the store, and the settings merged (flags > the model's own > the GGUF's).
 * The engine and the model resolution start together: the engine's start-up (~0.6 s for
 * llama.cpp, which tests its binary) overlaps the reading of manifests and headers.
 */
import type { Engine, EngineModel } from '../engine/engine.js';
import { defaultThreads, loadEngine } from '../engine/engines.js';
import type { Selection } from '../graph/select.js';
import type { LocalStore } from '../store/store.js';
import { resolveRunnable, type Runnable } from './runnable.js';
import { mergeSettings, type RunSettings } from './settings.js';

export interface OpenModelOptions {
  /** Settings given by the user (flags); they win over the model's. */
  settings?: RunSettings;
  threads?: number;
  /** Sequences generating at once (default 1). */
  parallel?: number;
  select?: Selection;
  weight?: string;
  /** Engine log lines. */
  log?: (line: string) => void;
  /** An engine already starting (the CLI starts it first thing: its start-up is the longest step). */
  engine?: Promise<Engine>;
  signal?: AbortSignal;
}

export interface OpenedModel {
  runnable: Runnable;
  model: EngineModel;
  /** What generation uses: flags over the model's settings. */
  settings: RunSettings;
  /** Milliseconds from the call to a loaded model. */
  loadMs: number;
  close(): Promise<void>;
}

export async function openModel(store: LocalStore, reference: string, o: OpenModelOptions = {}): Promise<OpenedModel> {
  const started = performance.now();
  const threads = o.threads ?? defaultThreads();
  const enginePromise = o.engine ?? loadEngine({ maxThreads: threads, ...(o.log ? { log: o.log } : {}) });
  enginePromise.catch(() => undefined); // awaited below; a resolve error must not leave it unhandled
  let engine: Engine | undefined;
  try {
    const runnable = await resolveRunnable(store, reference, { ...(o.select ? { select: o.select } : {}), ...(o.weight ? { weight: o.weight } : {}) });
    engine = await enginePromise;
    const settings = mergeSettings(o.settings ?? {}, runnable.defaults);
    const model = await engine.load({
      ...runnable.load,
      ...(settings.contextSize ? { contextSize: settings.contextSize } : {}),
      ...(settings.chatFormat ? { chatFormat: settings.chatFormat } : {}),
      threads,
      parallel: o.parallel ?? 1,
      ...(o.signal ? { signal: o.signal } : {}),
    });
    const eng = engine;
    return {
      runnable,
      model,
      settings,
      loadMs: performance.now() - started,
      close: async () => {
        await model.unload();
        await eng.close();
      },
    };
  } catch (e) {
    await (engine ?? (await enginePromise.catch(() => undefined)))?.close();
    throw e;
  }
}
