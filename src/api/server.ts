/**
 * `startApi()`: an OpenAI-compatible HTTP API over every model in the local store, as Docker
 * Model Runner and `ollama serve` offer (default 127.0.0.1:12434, Docker Model Runner's port).
 * Off loopback it needs an API key, then required as `Authorization: Bearer KEY` on every request
 * (compared in constant time). Bounded headers (16 KiB) and bodies (4 MiB), header and body
 * time-outs, no time-out on an answer (a generation takes what it takes); a client that
 * disconnects stops its generation. `close()` stops accepting, lets running requests finish for a
 * while, cuts the rest, then unloads the models.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import { PackError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import { defaultThreads, loadEngine } from '../engine/engines.js';
import type { Runnable } from '../run/runnable.js';
import { isLoopback, parseAddr } from '../serve/server.js';
import { InFlight, listenOn } from '../internal/http-lifecycle.js';
import type { LocalStore } from '../store/store.js';
import type { ApiDeps, Call } from './call.js';
import { Catalog, type CatalogEntry } from './catalog.js';
import { ApiError, toApiError } from './errors.js';
import { MAX_BODY_BYTES, sendError } from './http.js';
import { ModelPool, type PoolStats } from './model-pool.js';
import { route } from './routes.js';

export const DEFAULT_API_ADDR = '127.0.0.1:12434';

export interface ApiOptions {
  store: LocalStore;
  /** HOST:PORT, [V6]:PORT or :PORT (every interface; needs apiKey). Default 127.0.0.1:12434; port 0 picks one. */
  addr?: string;
  /** Required as `Authorization: Bearer KEY` on every request; needed off loopback. */
  apiKey?: string;
  /** Models loaded at once (default 2); the least recently used idle one is unloaded past it. */
  maxModels?: number;
  /** Sum of the loaded models' weight bytes (default no limit). */
  maxMemory?: number;
  /** Requests waiting per model beyond those running (default 16); past it 429. */
  queue?: number;
  /** CPU threads per model (default: the cores really there). */
  threads?: number;
  /** Context size of every model (default: the model's own, bounded by the engine). */
  contextSize?: number;
  /** Requests each model generates for at once (default 1). */
  parallel?: number;
  /** The engine (default: llama.cpp through node-llama-cpp, loaded on the first request). */
  engine?: () => Promise<Engine>;
  maxBodyBytes?: number;
  /** How long close() lets running requests finish before cutting them (default 10 s). */
  shutdownTimeoutMs?: number;
  /** One line per request, and the pool's loads and unloads. */
  log?: (line: string) => void;
}

export interface RunningApi {
  /** http://HOST:PORT (the API is under /v1). */
  url: string;
  port: number;
  /** The models it serves now (what GET /v1/models lists). */
  models(): Promise<CatalogEntry[]>;
  /** Loaded models, their queues, loads and unloads so far. */
  stats(): PoolStats;
  /** Resolves when no request holds or waits for a model. */
  idle(): Promise<void>;
  /** Graceful stop; idempotent. */
  close(): Promise<void>;
}

export async function startApi(opts: ApiOptions): Promise<RunningApi> {
  const { host, port } = parseAddr(opts.addr ?? DEFAULT_API_ADDR);
  if (!isLoopback(host) && !opts.apiKey) {
    throw new PackError('USAGE', `refusing to serve the models on ${host}:${port} without an API key`, {
      hint: 'add --api-key KEY (or set MPK_API_KEY); clients then send Authorization: Bearer KEY',
    });
  }
  if (opts.apiKey !== undefined && opts.apiKey.trim() === '') throw new PackError('USAGE', 'the API key is empty', { hint: 'give --api-key a secret, e.g. from openssl rand -hex 16' });
  const log = opts.log;
  const threads = opts.threads ?? defaultThreads();
  const catalog = new Catalog(opts.store);
  const pool = new ModelPool<Runnable>({
    resolve: (ref) => catalog.runnable(ref),
    engine: opts.engine ?? (() => loadEngine({ maxThreads: threads, ...(log ? { log } : {}) })),
    threads,
    ...(opts.parallel ? { parallel: opts.parallel } : {}),
    ...(opts.contextSize ? { contextSize: opts.contextSize } : {}),
    ...(opts.maxModels ? { maxModels: opts.maxModels } : {}),
    ...(opts.maxMemory ? { maxMemory: opts.maxMemory } : {}),
    ...(opts.queue !== undefined ? { queue: opts.queue } : {}),
    ...(log ? { log } : {}),
  });
  const deps: ApiDeps = { pool, catalog, maxBody: opts.maxBodyBytes ?? MAX_BODY_BYTES };
  const keyHash = opts.apiKey === undefined ? undefined : sha256(opts.apiKey);

  const inflight = new InFlight();
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const end = inflight.begin(res);
    const started = Date.now();
    const gone = new AbortController();
    const call: Call = { req, res, signal: gone.signal, note: {} };
    let complete = false;
    const closed = new Promise<void>((resolve) =>
      res.once('close', () => {
        complete = res.writableFinished;
        if (!complete) gone.abort(new PackError('ABORTED', 'the client disconnected'));
        resolve();
      }),
    );
    // The request is over when its answer is and its handler has returned (a cut generation
    // stops a moment after its client left): then it is logged, with what the handler noted.
    const served = serveOne(req, res, call).catch((e: unknown) => {
      call.note.error = (e as Error)?.message ?? String(e);
      res.destroy();
    });
    void Promise.all([closed, served]).then(() => {
      end();
      if (log) {
        // a note with white space or control characters (a client's model name) is quoted and escaped
        const notes = Object.entries(call.note).map(([k, v]) => `${k}=${typeof v === 'string' && /[\s\x00-\x1f\x7f-\x9f]/.test(v) ? JSON.stringify(v) : v}`);
        const status = complete ? String(res.statusCode) : `${res.headersSent ? res.statusCode : '-'} (client gone)`;
        log([req.method, req.url, status, `${Date.now() - started}ms`, ...notes].join(' '));
      }
    });
  };

  const serveOne = async (req: http.IncomingMessage, res: http.ServerResponse, call: Call): Promise<void> => {
    try {
      if (keyHash && !authorized(req.headers.authorization, keyHash)) {
        throw new ApiError(401, 'missing or wrong API key: send Authorization: Bearer KEY', 'authentication_error', null, 'invalid_api_key', { 'www-authenticate': 'Bearer' });
      }
      if (!keyHash) checkLocalCaller(req);
      const path = (req.url ?? '/').split('?')[0]!;
      const handle = route(req.method ?? 'GET', path);
      await handle(deps, call);
    } catch (e) {
      const err = toApiError(e);
      if (err.status >= 500) call.note.error = err.message;
      if (!res.destroyed) sendError(req, res, err);
    }
  };

  const server = http.createServer({ maxHeaderSize: 16 * 1024, headersTimeout: 30_000, requestTimeout: 120_000, keepAliveTimeout: 5_000 }, handler);
  server.maxConnections = 1024;
  const actual = await listenOn(server, host, port, 'stop what uses it (Docker Model Runner uses 12434 too), or choose another --addr');
  const shownHost = host === '0.0.0.0' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;

  let closed: Promise<void> | undefined;
  return {
    url: `http://${shownHost}:${actual}`,
    port: actual,
    models: () => catalog.list(),
    stats: () => pool.stats(),
    idle: () => pool.idle(),
    close() {
      closed ??= (async () => {
        // Cut clients' generations stop through their abort signals; the pool then unloads.
        await inflight.close(server, opts.shutdownTimeoutMs ?? 10_000);
        await pool.close();
      })();
      return closed;
    },
  };
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** `Bearer KEY` compared through fixed-length digests, in constant time whatever the lengths. */
function authorized(header: string | undefined, keyHash: Buffer): boolean {
  const m = /^Bearer\s+(.+)$/i.exec(header?.trim() ?? '');
  const given = sha256(m ? m[1]!.trim() : '');
  return timingSafeEqual(given, keyHash) && m !== null;
}

/**
 * Without a key the API is for this machine only, and a web page the user visits must not drive
 * it: a `Host` that is not a loopback name (DNS rebinding: evil.example resolving to 127.0.0.1)
 * or an `Origin` that is not a loopback page is refused, as Ollama learned (CVE-2024-28224).
 */
export function checkLocalCaller(req: http.IncomingMessage): void {
  const host = hostnameOf(req.headers.host ?? '');
  if (host === undefined || !isLoopbackName(host)) {
    throw new ApiError(403, `requests for host ${JSON.stringify(req.headers.host ?? '')} are refused: without --api-key the API answers only loopback names (localhost, 127.0.0.1, [::1])`, 'permission_error', null, 'forbidden_host');
  }
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== 'null') {
    let o: URL | undefined;
    try {
      o = new URL(origin);
    } catch {
      o = undefined;
    }
    if (!o || !isLoopbackName(o.hostname.replace(/^\[|\]$/g, ''))) {
      throw new ApiError(403, `requests from the web page ${JSON.stringify(origin)} are refused: without --api-key only pages on this machine may call the API`, 'permission_error', null, 'forbidden_origin');
    }
  }
}

function hostnameOf(hostHeader: string): string | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+))(?::\d{1,5})?$/.exec(hostHeader.trim());
  return m ? (m[1] ?? m[2])!.toLowerCase() : undefined;
}

function isLoopbackName(h: string): boolean {
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}
