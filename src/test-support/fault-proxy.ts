/**
 * A fault-injecting HTTP proxy in front of one upstream (e.g. a docker-registry peer). It forwards
 * every request (method, path, headers, streamed body) and streams the response back, rewriting an
 * absolute `Location` that points at the upstream so that it points at the proxy. Bodies are
 * streamed with backpressure in both directions and never buffered whole.
 *
 * Rules (`proxy.rules`, first match that has firings left wins) can answer with a status instead of
 * forwarding, cut the connection after N response-body bytes, flip one body byte, or stall after
 * N bytes. A rule counts as fired when it is applied to a request, even if the body turns out to be
 * too short for its byte offset.
 */
import { createServer, request as httpRequest, Agent as HttpAgent, STATUS_CODES, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TestContext } from 'node:test';

export interface FaultRule {
  match: (req: { method: string; url: string; headers: IncomingHttpHeaders }) => boolean;
  /** destroy the client socket after this many RESPONSE BODY bytes were sent */
  cutAfterBytes?: number;
  /** XOR one response body byte at this body offset with 0xff */
  flipByteAt?: number;
  /** answer with this status instead of forwarding (e.g. 503, 429 with retryAfter) */
  status?: number;
  /** Retry-After header value in seconds, with `status` */
  retryAfter?: number;
  /** how many times the rule fires (default 1); Infinity for always */
  times?: number;
  /** stop sending body bytes after N bytes and hang (a stall) */
  stallAfterBytes?: number;
}

export interface FaultLogEntry {
  method: string;
  url: string;
  /** the request's Range header */
  range?: string;
  /** status sent to the client (0 until known; 502 when the upstream failed) */
  status: number;
  /** response body bytes handed to the client socket so far */
  bodyBytesSent: number;
  /** which faults were applied, e.g. "status 503", "flip@10", "cut@100", "stall@0" */
  faulted?: string;
}

export interface FaultProxy {
  /** http://127.0.0.1:PORT */
  url: string;
  /** 127.0.0.1:PORT */
  host: string;
  rules: FaultRule[];
  log: FaultLogEntry[];
  stop(): Promise<void>;
}

// Hop-by-hop headers (RFC 9110 §7.6.1) are not forwarded; transfer-encoding is handled separately.
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'upgrade', 'transfer-encoding']);

function copyHeaders(h: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  const connTokens = String(h.connection ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined || HOP.has(k) || connTokens.includes(k)) continue;
    out[k] = v;
  }
  return out;
}

function errorCodeFor(status: number): string {
  if (status === 429) return 'TOOMANYREQUESTS';
  if (status === 401) return 'UNAUTHORIZED';
  if (status === 403) return 'DENIED';
  if (status === 404) return 'NOT_FOUND';
  if (status === 503) return 'UNAVAILABLE';
  return 'UNKNOWN';
}

/** Starts the proxy on 127.0.0.1:0 in front of `upstream` (http: or https: URL). With `t`, stopped after the test. */
export async function startFaultProxy(t: TestContext | null, upstream: string): Promise<FaultProxy> {
  const up = new URL(upstream);
  if (up.protocol !== 'http:' && up.protocol !== 'https:') throw new Error(`fault proxy: unsupported upstream ${upstream}`);
  const isHttps = up.protocol === 'https:';
  const agent = isHttps ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
  const basePath = up.pathname.replace(/\/+$/, '');
  const fired = new Map<FaultRule, number>();
  const sockets = new Set<Socket>();
  let proxyOrigin = '';

  const pickRule = (req: IncomingMessage): FaultRule | undefined => {
    const view = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers };
    for (const rule of proxy.rules) {
      const n = fired.get(rule) ?? 0;
      if (n >= (rule.times ?? 1)) continue;
      if (!rule.match(view)) continue;
      fired.set(rule, n + 1);
      return rule;
    }
    return undefined;
  };

  const rewriteLocation = (loc: string): string => {
    let u: URL;
    try {
      u = new URL(loc);
    } catch {
      return loc; // relative: already resolves against the proxy
    }
    if (u.protocol !== up.protocol || u.host !== up.host) return loc;
    let path = u.pathname;
    if (basePath && (path === basePath || path.startsWith(basePath + '/'))) path = path.slice(basePath.length) || '/';
    return `${proxyOrigin}${path}${u.search}${u.hash}`;
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const method = req.method ?? 'GET';
    const entry: FaultLogEntry = { method, url: req.url ?? '/', status: 0, bodyBytesSent: 0 };
    if (typeof req.headers.range === 'string') entry.range = req.headers.range;
    proxy.log.push(entry);
    const faults: string[] = [];
    const noteFault = (f: string): void => {
      faults.push(f);
      entry.faulted = faults.join('+');
    };
    const rule = pickRule(req);

    if (rule?.status !== undefined) {
      req.resume();
      noteFault(`status ${rule.status}`);
      const body = Buffer.from(JSON.stringify({ errors: [{ code: errorCodeFor(rule.status), message: `injected by fault proxy: ${rule.status} ${STATUS_CODES[rule.status] ?? ''}`.trim(), detail: null }] }));
      const headers: OutgoingHttpHeaders = { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length };
      if (rule.retryAfter !== undefined) headers['retry-after'] = String(rule.retryAfter);
      entry.status = rule.status;
      res.writeHead(rule.status, headers);
      if (method === 'HEAD') res.end();
      else {
        entry.bodyBytesSent = body.length;
        res.end(body);
      }
      return;
    }

    const headers = copyHeaders(req.headers);
    headers.host = up.host;
    const te = String(req.headers['transfer-encoding'] ?? '').toLowerCase();
    if (te.includes('chunked')) headers['transfer-encoding'] = 'chunked';
    else if (req.headers['content-length'] === undefined) headers['content-length'] = '0';

    const send = isHttps ? httpsRequest : httpRequest;
    const upReq = send({
      protocol: up.protocol,
      hostname: up.hostname,
      port: up.port || (isHttps ? 443 : 80),
      method,
      path: basePath + (req.url ?? '/'),
      headers,
      agent,
    });
    let done = false; // a fault took over or the exchange ended: ignore further upstream events
    const abandonUpstream = (): void => {
      done = true;
      upReq.destroy();
    };

    upReq.on('error', (err) => {
      if (done) return;
      done = true;
      if (!res.headersSent) {
        const body = Buffer.from(JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: `fault proxy: upstream failed: ${err.message}`, detail: null }] }));
        entry.status = 502;
        res.writeHead(502, { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length });
        res.end(body);
      } else {
        res.destroy();
      }
    });
    res.on('close', () => {
      // The client went away (or a fault closed it) before the upstream finished.
      if (!done) abandonUpstream();
    });
    req.on('error', () => abandonUpstream());
    req.pipe(upReq);

    upReq.on('response', (upRes) => {
      if (done) {
        upRes.resume();
        return;
      }
      const status = upRes.statusCode ?? 502;
      entry.status = status;
      const outHeaders = copyHeaders(upRes.headers);
      const loc = upRes.headers.location;
      if (typeof loc === 'string') outHeaders.location = rewriteLocation(loc);
      res.writeHead(status, upRes.statusMessage, outHeaders);
      if (method === 'HEAD' || status === 204 || status === 304) {
        upRes.resume();
        upRes.on('end', () => {
          done = true;
          res.end();
        });
        return;
      }

      const flipAt = rule?.flipByteAt;
      const cutAt = rule?.cutAfterBytes;
      const stallAt = rule?.stallAfterBytes;
      // The first byte limit that applies; cut wins a tie.
      let limit: number | undefined;
      let limitKind: 'cut' | 'stall' | undefined;
      if (cutAt !== undefined) [limit, limitKind] = [cutAt, 'cut'];
      if (stallAt !== undefined && (limit === undefined || stallAt < limit)) [limit, limitKind] = [stallAt, 'stall'];
      let sent = 0;

      const stopAtLimit = (part: Buffer): void => {
        abandonUpstream();
        upRes.removeAllListeners('data');
        upRes.on('error', () => {});
        upRes.resume();
        if (part.length) res.write(part);
        sent += part.length;
        entry.bodyBytesSent = sent;
        res.flushHeaders();
        noteFault(`${limitKind}@${limit}`);
        if (limitKind === 'cut') {
          // end() flushes what was written, then FIN; destroy once flushed (or after 2 s at worst).
          const sock = res.socket;
          if (!sock) return;
          const kill = setTimeout(() => sock.destroy(), 2000);
          kill.unref();
          sock.once('finish', () => {
            clearTimeout(kill);
            sock.destroy();
          });
          sock.end();
        }
        // stall: leave the client's response open with no more bytes; stop() or the client closes it.
      };

      upRes.on('data', (chunk: Buffer) => {
        if (done) return;
        let buf = chunk;
        if (flipAt !== undefined && flipAt >= sent && flipAt < sent + buf.length) {
          buf = Buffer.from(buf); // own copy before modifying
          buf[flipAt - sent] = buf[flipAt - sent]! ^ 0xff;
          noteFault(`flip@${flipAt}`);
        }
        if (limit !== undefined && sent + buf.length > limit) {
          stopAtLimit(buf.subarray(0, limit - sent));
          return;
        }
        sent += buf.length;
        entry.bodyBytesSent = sent;
        if (!res.write(buf)) {
          upRes.pause();
          res.once('drain', () => upRes.resume());
        }
      });
      upRes.on('end', () => {
        if (done) return;
        done = true;
        res.end();
      });
      upRes.on('error', () => {
        if (done) return;
        done = true;
        res.destroy();
      });
    });
  };

  const server = createServer(handle);
  // Multi-GiB uploads and stalls must not hit node's default 300 s request timeout.
  server.requestTimeout = 0;
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  proxyOrigin = `http://127.0.0.1:${port}`;
  let stopped: Promise<void> | undefined;
  const proxy: FaultProxy = {
    url: proxyOrigin,
    host: `127.0.0.1:${port}`,
    rules: [],
    log: [],
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
        agent.destroy();
      });
      return stopped;
    },
  };
  t?.after(() => proxy.stop());
  return proxy;
}
