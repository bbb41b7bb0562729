/** What every API handler gets: the request, its answer, a signal for a client gone, the models. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Runnable } from '../run/runnable.js';
import type { Catalog } from './catalog.js';
import type { ModelPool } from './model-pool.js';

export interface ApiDeps {
  pool: ModelPool<Runnable>;
  catalog: Catalog;
  /** Request bodies larger than this are 413. */
  maxBody: number;
}

export interface Call {
  req: IncomingMessage;
  res: ServerResponse;
  /** Aborts when the client disconnects before its answer is complete: the generation stops. */
  signal: AbortSignal;
  /** Facts for the request's log line (model, tokens). */
  note: Record<string, string | number>;
}

export type Handler = (deps: ApiDeps, call: Call) => Promise<void>;
