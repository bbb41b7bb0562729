/**
 * HTTP for the registry client: node:http/https with kept-alive connections (node:http streams
 * about 1.6x faster than fetch here, see ../shared/reference/peers.md), time-outs on stalls only
 * (a 40 GB blob may take an hour; a connection silent for `stallMs` is dead), TLS options.
 */
import http from 'node:http';
import type https from 'node:https';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import { isRecyclingStream } from '../content/storage.js';
import { PackError } from '../errors.js';
import { VERSION } from '../version.js';

export interface TransportOptions {
  /** Use http:// for every host. By default only localhost, 127.0.0.0/8 and ::1 use plain HTTP. */
  plainHttp?: boolean;
  /** PEM file of extra CA certificates to trust. */
  caFile?: string;
  /** Accept any TLS certificate (self-signed test registries). */
  insecure?: boolean;
  /** A connection with no bytes moving for this long is given up (ms, default 60 s). */
  stallMs?: number;
  /** Connections per host (default 16). */
  maxSockets?: number;
}

export type Body = Buffer | Readable | undefined;

export interface HttpRequest {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  /** A Buffer can be sent again on a retry; a stream cannot. */
  body?: Body;
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Must be read to the end or destroyed. */
  body: http.IncomingMessage;
  url: URL;
  /** Who sent the request (`user "bob"`, `anonymous`), set by the client on a 403 for its message. */
  identity?: string;
}

export const DEFAULT_STALL_MS = 60_000;
/** MPK_DEBUG=http logs each request and its status to stderr. */
const DEBUG = /\bhttp\b/.test(process.env.MPK_DEBUG ?? '');
export const USER_AGENT = `mpk/${VERSION} node/${process.versions.node}`;

/** True for hosts that are served over plain HTTP by default (as docker treats localhost). Host names are case-insensitive. */
export function isLoopbackHost(host: string): boolean {
  const name = host.toLowerCase().replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return name === 'localhost' || name === '::1' || /^127\.\d+\.\d+\.\d+$/.test(name);
}

/**
 * node:https and node:tls, loaded on the first HTTPS request: a plain-HTTP registry (mpk serve, a
 * local one) never needs them, and importing them took ~9 ms of start-up here. `require` of a
 * builtin, unlike an ESM import of it, does not read every export (tls's root store among them).
 */
const requireBuiltin = createRequire(import.meta.url);
let tlsModules: { https: typeof https; tls: typeof import('node:tls') } | undefined;
const tlsModulesOnce = () => (tlsModules ??= { https: requireBuiltin('node:https'), tls: requireBuiltin('node:tls') });

export class Transport {
  readonly stallMs: number;
  private readonly maxSockets: number;
  private readonly httpAgent: http.Agent;
  private httpsAgentMade: https.Agent | undefined;
  private readonly ca: Buffer | undefined;
  constructor(readonly opts: TransportOptions = {}) {
    this.stallMs = opts.stallMs && opts.stallMs > 0 ? opts.stallMs : DEFAULT_STALL_MS;
    this.maxSockets = opts.maxSockets ?? 16;
    this.httpAgent = new http.Agent({ keepAlive: true, maxSockets: this.maxSockets, scheduling: 'lifo' });
    if (opts.caFile) {
      try {
        this.ca = readFileSync(opts.caFile);
      } catch (e) {
        throw new PackError('IO', `${opts.caFile}: cannot read the CA file (${(e as Error).message})`, { hint: 'give a PEM file with --ca-file' });
      }
    }
  }

  private get httpsAgent(): https.Agent {
    const { https, tls } = tlsModulesOnce();
    return (this.httpsAgentMade ??= new https.Agent({
      keepAlive: true,
      maxSockets: this.maxSockets,
      scheduling: 'lifo',
      rejectUnauthorized: !this.opts.insecure,
      ...(this.ca ? { ca: [...tls.rootCertificates, this.ca.toString()] } : {}), // added to the system's trust, not instead of it
    }));
  }

  /** The base URL of a registry host. */
  baseUrl(host: string): string {
    const plain = this.opts.plainHttp || isLoopbackHost(host);
    return `${plain ? 'http' : 'https'}://${host}`;
  }

  /** Sends one request; resolves once the response headers arrive. Network failures → NETWORK. */
  send(req: HttpRequest): Promise<HttpResponse> {
    if (req.url.protocol !== 'http:' && req.url.protocol !== 'https:') {
      // node:http would throw a bare TypeError (ERR_INVALID_PROTOCOL): say what was refused.
      return Promise.reject(new PackError('REGISTRY', `${req.method} ${shortUrl(req.url)}: not an http(s) URL; refused`, { hint: 'the registry or its configuration points at a non-HTTP address' }));
    }
    const isHttps = req.url.protocol === 'https:';
    const mod = isHttps ? tlsModulesOnce().https : http;
    const headers: Record<string, string> = { 'user-agent': USER_AGENT, ...req.headers };
    if (Buffer.isBuffer(req.body)) headers['content-length'] = String(req.body.length);
    else if (req.body === undefined && (req.method === 'PUT' || req.method === 'POST' || req.method === 'PATCH')) headers['content-length'] ??= '0';
    return new Promise<HttpResponse>((resolve, reject) => {
      let settled = false;
      let response: http.IncomingMessage | undefined;
      const fail = (e: unknown) => {
        if (req.body instanceof Readable) req.body.destroy(); // release its file or socket
        if (settled) return;
        settled = true;
        reject(networkError(req, e));
      };
      const r = mod.request(
        req.url,
        { method: req.method, headers, agent: isHttps ? this.httpsAgent : this.httpAgent, signal: req.signal },
        (res: http.IncomingMessage) => {
          settled = true;
          response = res;
          if (DEBUG) process.stderr.write(`mpk: http ${req.method} ${req.url.pathname}${req.url.search ? '?…' : ''} → ${res.statusCode}\n`);
          // Stalls while the body streams are caught by the socket time-out below, which stays armed.
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res, url: req.url });
        },
      );
      r.setTimeout(this.stallMs, () => {
        const e = new PackError('NETWORK', `${req.method} ${req.url.host}${req.url.pathname}: no data for ${Math.round(this.stallMs / 1000)} s (stalled)`, {
          hint: 'check the network or the registry; the command can be run again and resumes',
        });
        // Once the body streams, its reader must see this error (not a bare "aborted").
        if (response && !response.complete) response.destroy(e);
        else r.destroy(e);
      });
      r.on('error', fail);
      if (req.body === undefined) r.end();
      else if (Buffer.isBuffer(req.body)) r.end(req.body);
      else {
        const body = req.body;
        body.on('error', (e) => r.destroy(e));
        if (isRecyclingStream(body)) {
          // Each chunk goes back to its source once the socket has it: the next read reuses it.
          body.on('data', (c: Buffer) => {
            if (!r.write(c, () => body.recycle(c))) body.pause();
          });
          r.on('drain', () => body.resume());
          body.on('end', () => r.end());
          r.on('close', () => body.destroy());
        } else body.pipe(r);
      }
    });
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgentMade?.destroy();
  }
}

/** A URL for a message: no query (it may carry signed credentials), at most 200 characters. */
export function shortUrl(u: URL): string {
  const c = new URL(u.href);
  c.username = c.password = c.search = c.hash = '';
  const s = c.href;
  return s.length > 200 ? `${s.slice(0, 199)}…` : s;
}

function networkError(req: HttpRequest, e: unknown): PackError {
  if (e instanceof PackError) return e;
  const err = e as NodeJS.ErrnoException;
  if (err?.name === 'AbortError') return new PackError('ABORTED', `${req.method} ${req.url.host}: interrupted`, { cause: e });
  const code = err?.code ?? '';
  const where = `${req.method} ${req.url.origin}${req.url.pathname}`;
  if (code === 'ECONNREFUSED') {
    return new PackError('NETWORK', `${req.url.host}: connection refused`, { cause: e, hint: 'is the registry running at that address and port?' });
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new PackError('NETWORK', `${req.url.hostname}: host not found`, { cause: e, hint: 'check the registry name' });
  }
  if (/certificate|CERT_|SELF_SIGNED|UNABLE_TO_VERIFY/i.test(code + (err?.message ?? ''))) {
    return new PackError('NETWORK', `${req.url.host}: TLS certificate not trusted (${err.message})`, {
      cause: e,
      hint: 'give the CA with --ca-file, or --insecure for a test registry',
    });
  }
  if (code === 'EPROTO' || /wrong version number|packet length too long/i.test(err?.message ?? '')) {
    return new PackError('NETWORK', `${req.url.host}: TLS handshake failed (${err.message})`, {
      cause: e,
      hint: 'if the registry speaks plain HTTP, add --plain-http',
    });
  }
  return new PackError('NETWORK', `${where}: ${err?.message || code || String(e)}`, { cause: e, hint: 'check the network; the command can be run again and resumes' });
}

/** Reads a whole small response body, refusing more than max bytes. */
export async function readBody(res: HttpResponse, max: number): Promise<Buffer> {
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) {
    res.body.destroy();
    throw new PackError('SIZE_EXCEEDS_LIMIT', `${res.url.pathname}: response of ${declared} bytes is over the ${max}-byte limit`);
  }
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res.body as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > max) {
      res.body.destroy();
      throw new PackError('SIZE_EXCEEDS_LIMIT', `${res.url.pathname}: response is over the ${max}-byte limit`);
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

/** Throws away a response body (small error bodies, HEAD), keeping the connection reusable. */
export async function discard(res: HttpResponse): Promise<void> {
  // Even a complete body (HEAD, 204) must be read to its end: only then does the agent put the
  // kept-alive socket back in the pool (otherwise it sits idle until the stall time-out).
  const max = 64 * 1024;
  let n = 0;
  try {
    for await (const c of res.body as AsyncIterable<Buffer>) {
      n += c.length;
      if (n > max) {
        res.body.destroy();
        return;
      }
    }
  } catch {
    /* already failed: nothing to keep */
  }
}
