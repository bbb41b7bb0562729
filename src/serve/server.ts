/**
 * `startServer()`: the embedded registry as a library call. It takes the root (serve.lock), loads
 * the auth files, listens (TLS with a certificate and key), and runs until `close()`, which stops
 * accepting, lets running requests finish (up to `shutdownTimeoutMs`), then cuts the rest; an
 * interrupted upload stays resumable. Limits: request headers (16 KiB), header and idle time-outs
 * (no total time-out: a large blob may take an hour, but a blob body must keep a minimum rate),
 * concurrent blob writes, open upload sessions, and 4 MiB manifests.
 * Security default: an open registry only on a loopback address.
 */
import http from 'node:http';
import https from 'node:https';
import { readFile } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import { PackError, fsError } from '../errors.js';
import { AccessPolicy, PasswordChecker, loadHtpasswd, loadUsersFile } from './access.js';
import { formatAccess, watchRequest, type LogFormat } from './access-log.js';
import { InFlight, listenOn } from '../internal/http-lifecycle.js';
import { createApp } from './app.js';
import { Catalog } from './catalog/catalog.js';
import { ServeError, isOutOfSpace } from './errors.js';
import { Auth, type AuthConfig } from './auth.js';
import type { DeleteMode } from './context.js';
import { openBackend } from './backend.js';
import { BlobFetches } from './proxy/blob-fetch.js';
import { ProxyStorage } from './proxy/proxy-store.js';
import { Upstream } from './proxy/upstream.js';
import type { RegistryStorage } from './storage.js';
import { gcSummary, type GcResult } from './gc.js';
import { Gate } from './gate.js';
import type { LoginLimits } from './login-throttle.js';
import { TokenService } from './token.js';

export interface ServeOptions {
  /** The filesystem root; with `storage`, unused (and may be ''). */
  root: string;
  /** `s3://BUCKET[/PREFIX]`: keep everything in object storage; replicas may share it. */
  storage?: string;
  /** An S3-compatible endpoint (path-style), e.g. Ceph RGW or MinIO. */
  s3Endpoint?: string;
  s3Region?: string;
  /** Credentials instead of the AWS chain (environment, AWS_PROFILE...). */
  s3Credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Blob GETs answered with a 307 to a presigned URL valid this many seconds (default 0: stream through). */
  s3RedirectSeconds?: number;
  /** A pull-through cache of this registry (http(s)://HOST[:PORT]); pushes are refused. */
  proxy?: string;
  /** A cached tag is checked upstream again once it is this old (default 5 min). */
  proxyTtlMs?: number;
  /** Where docker's config (upstream credentials) is found: DOCKER_CONFIG, HOME (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** HOST:PORT, [V6]:PORT or :PORT (every interface). Default 127.0.0.1:5000; port 0 picks one. */
  addr?: string;
  /** htpasswd file (bcrypt): Basic auth, every user may pull, push and delete. */
  htpasswd?: string;
  /** Users-and-access file (JSON, see access.ts): token mode with a /token endpoint. */
  tokenUsers?: string;
  tokenTtlSeconds?: number;
  /** The brake on password guessing (login-throttle.ts); the defaults suit a registry, tests lower them. */
  loginLimits?: Partial<LoginLimits>;
  tlsCert?: string;
  tlsKey?: string;
  /** Allow an open (no auth) registry on a non-loopback address. */
  insecureOpen?: boolean;
  deletes?: DeleteMode;
  /** Upload sessions untouched this long are removed (default 24 h). */
  uploadTtlMs?: number;
  /** Online garbage collection every … (default off) with this grace period (default 1 h). */
  gcIntervalMs?: number;
  gcGraceMs?: number;
  maxUploads?: number;
  /** Upload sessions open at once, counted on disk; past it a new session is a 429 (default 10000). */
  maxUploadSessions?: number;
  /**
   * Blob bodies (PATCH, PUT, monolithic POST) slower than this many bytes/s over the window
   * (default 60 s) are cut with a 408, what arrived kept (default 1024; 0 = no minimum).
   */
  minUploadRate?: number;
  /** The window `minUploadRate` is measured over (default 60 s; tests use a short one). */
  minUploadRateWindowMs?: number;
  /** Bytes of manifest bodies held in memory at once (default 64 MiB). */
  manifestMemoryBytes?: number;
  maxHashWorkers?: number;
  maxHeaderBytes?: number;
  /** Serve the web catalog at / (default true). */
  catalog?: boolean;
  /** With shared storage (S3, a cache): the catalog walks the registry again once its index is this old (default 30 s). */
  catalogRewalkMs?: number;
  /** Flush each commit to disk before answering (default off: see durable.ts). */
  fsync?: boolean;
  /** A connection silent this long is closed (default 120 s). */
  idleTimeoutMs?: number;
  shutdownTimeoutMs?: number;
  /** One line per request. */
  accessLog?: (line: string) => void;
  logFormat?: LogFormat;
  /** Operational messages (collection results, internal errors). */
  log?: (line: string) => void;
}

export interface RunningServer {
  /** http(s)://HOST:PORT */
  url: string;
  /** HOST:PORT, as a reference's registry part. */
  host: string;
  port: number;
  root: string;
  /** Graceful stop; idempotent. */
  close(): Promise<void>;
  /** One collection pass now (the same as the periodic one). */
  collect(graceMs?: number): Promise<GcResult>;
}

const bytes = (n: number): string => `${n} bytes`;

/** The longest delay a node timer takes. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export function parseAddr(addr: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(addr);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new PackError('USAGE', `--addr ${JSON.stringify(addr)}: not HOST:PORT`, { hint: 'e.g. --addr 127.0.0.1:5000, --addr [::1]:5000 or --addr :5000 (every interface)' });
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

async function authConfig(opts: ServeOptions): Promise<AuthConfig> {
  if (opts.htpasswd && opts.tokenUsers) throw new PackError('USAGE', '--htpasswd and --token-users exclude each other', { hint: 'basic auth: --htpasswd FILE; tokens with per-repository access: --token-users FILE' });
  if (opts.htpasswd) return { mode: 'basic', passwords: new PasswordChecker(await loadHtpasswd(opts.htpasswd), undefined, opts.loginLimits) };
  if (opts.tokenUsers) {
    const f = await loadUsersFile(opts.tokenUsers);
    const tokens = new TokenService({ passwords: new PasswordChecker(f.users, undefined, opts.loginLimits), policy: new AccessPolicy(f.rules), ...(opts.tokenTtlSeconds ? { ttlSeconds: opts.tokenTtlSeconds } : {}) });
    return { mode: 'token', tokens };
  }
  return { mode: 'none' };
}

export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  const root = resolvePath(opts.root);
  const { host, port } = parseAddr(opts.addr ?? '127.0.0.1:5000');
  const config = await authConfig(opts);
  if (config.mode === 'none' && !isLoopback(host) && !opts.insecureOpen) {
    throw new PackError('USAGE', `refusing to serve ${host}:${port} without authentication`, {
      hint: 'add --htpasswd FILE or --token-users FILE (with --tls-cert/--tls-key), or --insecure-open if every host that can reach it may push and delete',
    });
  }
  if (!!opts.tlsCert !== !!opts.tlsKey) throw new PackError('USAGE', '--tls-cert and --tls-key go together', { hint: 'give both PEM files' });
  const tls = opts.tlsCert ? { cert: await readPem(opts.tlsCert), key: await readPem(opts.tlsKey!) } : undefined;
  const log = opts.log ?? (() => undefined);
  if (config.mode !== 'none' && !tls && !isLoopback(host)) log(`warning: passwords and tokens to ${host}:${port} travel in clear text; serve TLS with --tls-cert/--tls-key`);

  const upstream = opts.proxy ? new Upstream({ url: opts.proxy, ...(opts.env ? { env: opts.env } : {}) }) : undefined;
  const backend = await openBackend({
    root,
    storage: opts.storage,
    s3Endpoint: opts.s3Endpoint,
    s3Region: opts.s3Region,
    s3Credentials: opts.s3Credentials,
    s3RedirectSeconds: opts.s3RedirectSeconds,
    fsync: opts.fsync,
    uploads: {
      fsync: !!opts.fsync,
      ...(opts.uploadTtlMs ? { ttlMs: opts.uploadTtlMs } : {}),
      ...(opts.maxHashWorkers !== undefined ? { maxFollowers: opts.maxHashWorkers } : {}),
      maxSessions: opts.maxUploadSessions ?? 10_000,
      minRate: opts.minUploadRate ?? 1024,
      ...(opts.minUploadRateWindowMs ? { minRateWindowMs: opts.minUploadRateWindowMs } : {}),
    },
  });
  const { uploads } = backend;
  const release = async (): Promise<void> => {
    upstream?.close();
    await backend.release();
  };
  let store: RegistryStorage = backend.store;
  if (upstream) {
    try {
      const fetches = new BlobFetches(upstream, await backend.spoolDir(), (path, name, digest, size) => backend.keepFile(path, name, digest, size));
      store = new ProxyStorage(backend.store, upstream, fetches, opts.proxyTtlMs ?? 300_000);
    } catch (e) {
      await release();
      throw e;
    }
  }
  const gate = new Gate();
  let base = '';
  const auth = new Auth(config, () => base);
  const graceMs = opts.gcGraceMs ?? 3600_000;
  const users = new WeakMap<http.IncomingMessage, string>();
  const catalog = opts.catalog === false ? undefined : new Catalog({ store, auth, base: () => base, onIdentity: (req, user) => users.set(req, user), ...(opts.storage || upstream ? { rewalkMs: opts.catalogRewalkMs ?? 30_000 } : {}) });
  const app = createApp({
    ...(catalog ? { catalog, onRepoChange: (name: string) => catalog.changed(name) } : {}),
    store,
    uploads,
    gate,
    auth,
    deletes: opts.deletes ?? 'all',
    ...(upstream ? { readOnly: `this registry is a pull-through cache of ${upstream.url}: push there` } : {}),
    touchOlderMs: graceMs / 2,
    ...(config.mode === 'token' ? { tokens: config.tokens } : {}),
    ...(opts.maxUploads ? { maxUploads: opts.maxUploads } : {}),
    ...(opts.manifestMemoryBytes ? { manifestMemoryBytes: opts.manifestMemoryBytes } : {}),
    onIdentity: (req, user) => users.set(req, user),
    onCut: (req, reason) => cuts.set(req, reason),
    onInternalError: (e, req) => log(`error: ${req.method} ${req.url}: ${e instanceof ServeError || isOutOfSpace(e) ? (e as Error).message : ((e as Error)?.stack ?? String(e))}`),
  });

  const inflight = new InFlight();
  const format = opts.logFormat ?? 'text';
  const cuts = new WeakMap<http.IncomingMessage, string>();
  const idleTimeoutMs = opts.idleTimeoutMs ?? 120_000;
  const watch = { user: (req: http.IncomingMessage) => users.get(req) ?? '', cutReason: (req: http.IncomingMessage) => cuts.get(req), closing: () => inflight.closing, idleTimeoutMs };
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    res.once('close', inflight.begin(res));
    if (opts.accessLog) watchRequest(req, res, watch, (e) => opts.accessLog!(formatAccess(e, format)));
    void app(req, res);
  };
  const serverOpts = { maxHeaderSize: opts.maxHeaderBytes ?? 16 * 1024, requestTimeout: 0, headersTimeout: 30_000, keepAliveTimeout: 5_000 };
  const server = tls ? https.createServer({ ...serverOpts, ...tls }, handler) : http.createServer(serverOpts, handler);
  server.setTimeout(idleTimeoutMs);
  server.maxConnections = 4096;
  let actual: number;
  try {
    actual = await listenOn(server, host, port, 'stop what uses it, or choose another --addr');
  } catch (e) {
    await release();
    throw e;
  }
  const shownHost = host === '0.0.0.0' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  base = `${tls ? 'https' : 'http'}://${shownHost}:${actual}`;

  /** Collections and sweeps under way: close() waits for them before it lets go of the root. */
  const background = new Set<Promise<unknown>>();
  const track = <T>(p: Promise<T>): Promise<T> => {
    background.add(p);
    const forget = (): void => void background.delete(p);
    p.then(forget, forget);
    return p;
  };
  const collect = (grace = graceMs): Promise<GcResult> =>
    track(
      (async () => {
        const r = await backend.collect({ graceMs: grace, gate });
        if (r.blobsRemoved || r.linksRemoved || r.referrersRemoved || r.uploadsRemoved || r.tempsRemoved) log(`gc: removed ${gcSummary(r, bytes)}: ${bytes(r.bytesFreed)} freed`);
        for (const p of r.problems) log(`gc: ${p}`);
        return r;
      })(),
    );
  const ttl = uploads.ttlMs;
  const sweep = async (): Promise<void> => {
    const x = await uploads.expire();
    if (x.sessions > 0) log(`upload sweep: removed ${x.sessions} expired upload session${x.sessions === 1 ? '' : 's'}: ${bytes(x.bytes)} freed`);
  };
  const timers: NodeJS.Timeout[] = [setInterval(() => void track(sweep()).catch((e) => log(`upload sweep: ${String(e)}`)), Math.max(1000, Math.min(ttl / 4, 600_000)))];
  timers[0]!.unref();
  if (opts.gcIntervalMs) {
    // One pass at a time, the next one an interval after the last ended; a timer cannot wait more
    // than 2^31-1 ms (node runs a longer one after 1 ms), so long intervals are waited in steps.
    const interval = opts.gcIntervalMs;
    const schedule = (at: number): void => {
      const t = setTimeout(() => {
        timers.splice(timers.indexOf(t), 1);
        if (inflight.closing) return;
        if (Date.now() < at) return schedule(at);
        void collect()
          .catch((e) => log(`gc: ${String(e)}`))
          .finally(() => inflight.closing || schedule(Date.now() + interval));
      }, Math.min(Math.max(at - Date.now(), 0), MAX_TIMER_MS));
      t.unref();
      timers.push(t);
    };
    schedule(Date.now() + interval);
  }

  let closed: Promise<void> | undefined;
  return {
    url: base,
    host: `${shownHost}:${actual}`,
    port: actual,
    root: backend.where,
    collect,
    close() {
      closed ??= (async () => {
        inflight.closing = true;
        for (const t of timers) clearTimeout(t);
        await inflight.close(server, opts.shutdownTimeoutMs ?? 30_000);
        // A collection or sweep still running must not outlive the lock (another process may take the root).
        while (background.size > 0) await Promise.allSettled([...background]);
        uploads.close();
        await release();
      })();
      return closed;
    },
  };
}

async function readPem(file: string): Promise<Buffer> {
  return readFile(file).catch((e) => {
    throw fsError(e, file, 'cannot read TLS file');
  });
}
