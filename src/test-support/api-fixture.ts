/**
 * What the API's engine tests share (a .test.ts file so the build leaves it out; it holds no
 * tests): a store with two tiny LLaMA GGUFs (`models/tiny:q8` with a creation time,
 * `models/tiny2:q8`) and a safetensors model (`models/st:1`), and one llama.cpp engine for every
 * server of a test file (starting one costs ~1 s here). Without node-llama-cpp, `engine` is
 * undefined and `engineProblem` says why; under CI=true that is a failure instead.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildModel } from '../build/build-model.js';
import type { Engine } from '../engine/engine.js';
import { loadEngine } from '../engine/engines.js';
import { LocalStore } from '../store/store.js';
import { writeTinyLlama } from './tiny-llama.js';
import { makeModelDir } from './tmp.js';

export interface Fixture {
  /** The store's root (for `mpk --store`). */
  root: string;
  store: LocalStore;
  engine?: Engine;
  engineProblem?: string;
  /** The shared engine, for ApiOptions.engine: closing a server leaves it running. */
  sharedEngine: () => Promise<Engine>;
  close(): Promise<void>;
}

/** 1 thread: on 2 cores (and tests two at a time) more threads only spin. */
export const TEST_THREADS = 1;

export async function openFixture(): Promise<Fixture> {
  const root = await mkdtemp(join(tmpdir(), 'mpk-api-'));
  const store = await LocalStore.open(join(root, 'store'));
  const models: [string, (dir: string) => Promise<unknown>, string | undefined][] = [
    ['models/tiny:q8', (d) => writeTinyLlama(join(d, 'tiny.gguf'), { seed: 1 }), '2025-01-02T03:04:05Z'],
    ['models/tiny2:q8', (d) => writeTinyLlama(join(d, 'tiny2.gguf'), { seed: 2 }), undefined],
    ['models/st:1', (d) => makeModelDir(d), undefined],
  ];
  for (const [i, [reference, write, createdAt]] of models.entries()) {
    const dir = join(root, `src${i}`);
    await mkdir(dir);
    await write(dir);
    await buildModel(store, { contextDir: dir, reference, ...(createdAt ? { createdAt } : {}) });
  }
  let engine: Engine | undefined;
  let engineProblem: string | undefined;
  try {
    engine = await loadEngine({ maxThreads: TEST_THREADS });
  } catch (e) {
    if (process.env.CI === 'true') throw e;
    engineProblem = (e as Error).message;
  }
  const shared: Engine | undefined = engine && { name: engine.name, load: (o) => engine!.load(o), close: async () => undefined };
  return {
    root: join(root, 'store'),
    store,
    ...(engine ? { engine } : {}),
    ...(engineProblem ? { engineProblem } : {}),
    sharedEngine: async () => shared ?? (await loadEngine({ maxThreads: TEST_THREADS })),
    async close() {
      await engine?.close();
      store.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}
