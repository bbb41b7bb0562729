/**
 * Small blob GETs over a few kept-alive plain-HTTP connections, pipelined (HTTP/1.1: several
 * requests written before their answers arrive, answered in order). A 10,000-file pull is mostly
 * blobs of a few hundred bytes; through node:http each costs ~0.4 ms of client CPU (a ClientRequest,
 * an IncomingMessage, stream hops, one write and one read per request), which on a 2-core machine
 * is taken from the registry answering. Here a request is one formatted head, the heads of one tick
 * go out in one write, and the answers of one read are cut from it in a loop.
 *
 * Only the simple case is handled: a 200 with a Content-Length no larger than the caller's limit,
 * on a connection that stays open. Anything else answers `undefined` for that request (and for the
 * ones after it on a connection that cannot go on), and the caller asks again through the general
 * client, which handles auth challenges, redirects, errors and retries. After any answer other than
 * 200 a pool sends nothing more (`declined`): a registry that redirects blobs to storage or wants
 * new credentials would otherwise cost a wasted round trip per blob. TLS always goes the general way.
 */
import net from 'node:net';
import { parseHead } from './raw-get.js';
import { USER_AGENT } from './transport.js';

/** Response heads larger than this end the connection (the request goes the general way). */
const MAX_HEAD_BYTES = 64 * 1024;

export interface SmallGetOptions {
  /** Connections per origin (default 8: a Go registry answers one connection's requests one at a time). */
  connections?: number;
  /** Requests written ahead on one connection (default 8). */
  depth?: number;
  /** A connection with requests out and no byte for this long is dropped (its requests go the general way). */
  stallMs: number;
}

export interface SmallAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

interface Pending {
  head: string;
  maxBody: number;
  resolve(a: SmallAnswer | undefined): void;
}

/** Is the pipelined path possible for this URL? (`MPK_PIPELINE=0` turns it off.) */
export function pipelineEligible(url: URL): boolean {
  return url.protocol === 'http:' && process.env.MPK_PIPELINE !== '0';
}

export class SmallGetPool {
  /** Set after an answer other than a plain 200: every later get answers `undefined` at once. */
  declined = false;
  private readonly conns: Conn[] = [];
  private readonly waiting: Pending[] = [];
  private readonly connections: number;
  private readonly depth: number;
  constructor(
    private readonly origin: URL,
    private readonly opts: SmallGetOptions,
  ) {
    this.connections = Math.max(1, opts.connections ?? 8);
    this.depth = Math.max(1, opts.depth ?? 8);
  }

  /**
   * GET `pathAndQuery` with these headers. Resolves with a 200 answer whose body is whole, or with
   * `undefined` when this path cannot answer (the caller then sends the request the general way).
   */
  get(pathAndQuery: string, headers: Record<string, string>, maxBody: number, signal?: AbortSignal): Promise<SmallAnswer | undefined> {
    if (this.declined || signal?.aborted || /[\s]/.test(pathAndQuery)) return Promise.resolve(undefined);
    const lines = [`GET ${pathAndQuery} HTTP/1.1`, `Host: ${this.origin.host}`, `User-Agent: ${USER_AGENT}`];
    for (const [k, v] of Object.entries(headers)) {
      if (/[\r\n]/.test(k) || /[\r\n]/.test(v)) return Promise.resolve(undefined); // never let a value split the request
      lines.push(`${k}: ${v}`);
    }
    return new Promise((resolve) => {
      // Interrupted: answer now (the caller then sees its signal); a late answer is dropped.
      const onAbort = () => resolve(undefined);
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = (a: SmallAnswer | undefined) => {
        signal?.removeEventListener('abort', onAbort);
        resolve(a);
      };
      this.waiting.push({ head: lines.join('\r\n') + '\r\n\r\n', maxBody, resolve: done });
      this.dispatch();
    });
  }

  /** Ends every connection; requests still out answer `undefined`. */
  close(): void {
    this.declined = true;
    for (const c of this.conns.splice(0)) c.drop();
    for (const p of this.waiting.splice(0)) p.resolve(undefined);
  }

  /** @internal a connection has room again, or is gone */
  dispatch(): void {
    for (let i = this.conns.length - 1; i >= 0; i--) if (this.conns[i]!.dead) this.conns.splice(i, 1);
    while (this.waiting.length > 0) {
      if (this.declined) {
        for (const p of this.waiting.splice(0)) p.resolve(undefined);
        return;
      }
      let best: Conn | undefined;
      for (const c of this.conns) if (c.outstanding < this.depth && (!best || c.outstanding < best.outstanding)) best = c;
      if ((!best || best.outstanding > 0) && this.conns.length < this.connections) {
        best = new Conn(this, this.origin, this.opts.stallMs);
        this.conns.push(best);
      }
      if (!best) return;
      best.send(this.waiting.shift()!);
    }
  }
}

/** One connection: requests written in order, answers cut from the bytes in the same order. */
class Conn {
  dead = false;
  private readonly queue: Pending[] = [];
  private readonly socket: net.Socket;
  private buf: Buffer = Buffer.alloc(0);
  /** The head of the answer being read, once parsed; its body still arriving. */
  private head: { status: number; headers: Record<string, string>; length: number; close: boolean } | undefined;
  private corked = false;

  constructor(
    private readonly pool: SmallGetPool,
    origin: URL,
    stallMs: number,
  ) {
    this.socket = net.connect({ host: origin.hostname.replace(/^\[|\]$/g, ''), port: Number(origin.port || 80) });
    this.socket.setNoDelay(true);
    this.socket.unref();
    this.socket.setTimeout(stallMs, () => this.outstanding > 0 && this.drop());
    this.socket.on('data', (c: Buffer) => this.onData(c));
    this.socket.on('error', () => this.drop());
    this.socket.on('close', () => this.drop());
  }

  get outstanding(): number {
    return this.queue.length;
  }

  send(p: Pending): void {
    this.queue.push(p);
    if (this.queue.length === 1) this.socket.ref(); // answers awaited: keep the process alive
    // The heads written in one tick leave in one write.
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(p.head);
  }

  /** Ends the connection; what is still out answers `undefined` and goes the general way. */
  drop(): void {
    if (this.dead) return;
    this.dead = true;
    this.socket.destroy();
    for (const p of this.queue.splice(0)) p.resolve(undefined);
    this.pool.dispatch();
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    while (!this.dead && this.buf.length > 0) {
      if (!this.head) {
        const end = this.buf.indexOf('\r\n\r\n');
        if (end < 0) {
          // Bytes nobody asked for, or a head too big: this connection cannot go on.
          if (this.buf.length > MAX_HEAD_BYTES || this.queue.length === 0) this.drop();
          return;
        }
        const parsed = parseHead(this.buf.subarray(0, end).toString('latin1'));
        const p = this.queue[0];
        const length = parsed ? Number(parsed.headers['content-length']) : NaN;
        if (!parsed || !p || parsed.headers['transfer-encoding'] !== undefined || !Number.isSafeInteger(length) || length < 0 || parsed.status < 200) {
          this.drop(); // cannot find where this answer ends: the rest go the general way
          return;
        }
        if (parsed.status !== 200 || length > p.maxBody) {
          // Not ours to handle (auth, redirect, error, a larger blob): this and everything after go
          // the general way, which reports it properly.
          this.pool.declined = true;
          this.drop();
          return;
        }
        this.head = { status: parsed.status, headers: parsed.headers, length, close: /\bclose\b/i.test(parsed.headers.connection ?? '') };
        this.buf = this.buf.subarray(end + 4);
      }
      if (this.buf.length < this.head.length) return;
      const body = this.buf.subarray(0, this.head.length);
      this.buf = this.buf.subarray(this.head.length);
      const { status, headers, close } = this.head;
      this.head = undefined;
      const p = this.queue.shift()!;
      if (this.queue.length === 0) this.socket.unref();
      p.resolve({ status, headers, body });
      if (close) {
        this.drop();
        return;
      }
      this.pool.dispatch();
    }
  }
}
