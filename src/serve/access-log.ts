/**
 * One access-log line per request, as text or JSON; control characters never reach the log.
 * The line tells what the client really got: a request cut before its answer (the idle time-out,
 * the client gone, the server stopping) has no status (`-`, JSON null) and a note saying why, and
 * one whose answer was cut midway keeps the status sent with a note; never the 200 that node's
 * ServerResponse holds before anything is sent.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface AccessEntry {
  time: Date;
  remote: string;
  user: string;
  method: string;
  url: string;
  /** The status sent; undefined when no answer was sent. */
  status: number | undefined;
  /**
   * Request body bytes (its Content-Length when read whole, else the bytes that arrived for the
   * request, its head included), and bytes written (headers included).
   */
  bytesIn: number;
  bytesOut: number;
  ms: number;
  /** Why the exchange did not end with a whole answer. */
  note?: string | undefined;
}

export type LogFormat = 'text' | 'json';

const clean = (s: string): string => s.replace(/[\u0000-\u001f\u007f-\u009f"\\]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

export function formatAccess(e: AccessEntry, format: LogFormat): string {
  const url = e.url.length > 1024 ? `${e.url.slice(0, 1024)}…` : e.url;
  if (format === 'json') {
    return JSON.stringify({
      time: e.time.toISOString(),
      remote: e.remote,
      user: e.user || null,
      method: e.method,
      url,
      status: e.status ?? null,
      in: e.bytesIn,
      out: e.bytesOut,
      ms: Math.round(e.ms * 10) / 10,
      ...(e.note ? { note: e.note } : {}),
    });
  }
  const note = e.note ? ` note="${clean(e.note)}"` : '';
  return `${e.time.toISOString()} ${e.remote} ${e.user ? clean(e.user) : '-'} "${clean(e.method)} ${clean(url)}" ${e.status ?? '-'} in=${e.bytesIn} out=${e.bytesOut} ${e.ms.toFixed(1)}ms${note}`;
}

export interface Watch {
  /** The user the request ran as ('' anonymous). */
  user(req: IncomingMessage): string;
  /** Why the server cut the request, when it did (a cancelled upload, a body that stopped). */
  cutReason(req: IncomingMessage): string | undefined;
  /** True while the server is stopping (its cut of what still runs is the reason). */
  closing(): boolean;
  idleTimeoutMs: number;
}

/** Per connection: bytes read when its last request ended (where the next one's start), and how it ended. */
interface Conn {
  readUpTo: number;
  timedOut: boolean;
  clientGone: boolean;
}
const conns = new WeakMap<object, Conn>();

/**
 * The state of a request's connection, followed from its first request on: listeners on the
 * socket, once per connection (not per request: pipelined requests would pile them up).
 */
function connOf(socket: IncomingMessage['socket']): Conn {
  let c = conns.get(socket);
  if (!c) {
    const conn: Conn = { readUpTo: 0, timedOut: false, clientGone: false };
    // The idle time-out (node then cuts the socket), or the client's FIN or reset.
    socket.once('timeout', () => void (conn.timedOut = true));
    socket.once('end', () => void (conn.clientGone = true));
    socket.once('error', () => void (conn.clientGone = true));
    conns.set(socket, conn);
    c = conn;
  }
  return c;
}

/** Follows one request and hands its line to `log` once its connection is done with it. */
export function watchRequest(req: IncomingMessage, res: ServerResponse, w: Watch, log: (e: AccessEntry) => void): void {
  const started = process.hrtime.bigint();
  const socket = req.socket;
  const remote = socket.remoteAddress ?? '-'; // a socket already destroyed at the end no longer knows
  const conn = connOf(socket);
  const in0 = conn.readUpTo; // not socket.bytesRead: the head and the first bytes of the body are read by now
  const out0 = socket.bytesWritten;
  res.once('close', () => {
    conn.readUpTo = socket.bytesRead;
    const arrived = socket.bytesRead - in0; // the request's head included
    const declared = Number(req.headers['content-length']);
    let note: string | undefined;
    if (!res.writableFinished) {
      // The app says when it cut a request itself, if it does so before the connection closes.
      const why = conn.timedOut
        ? `idle time-out (nothing for ${w.idleTimeoutMs % 1000 === 0 ? `${w.idleTimeoutMs / 1000} s` : `${w.idleTimeoutMs} ms`})`
        : (w.cutReason(req) ?? (conn.clientGone ? 'the client closed the connection' : w.closing() ? 'the server stopped' : 'the connection closed'));
      note = `${res.headersSent ? 'answer cut' : 'no answer'}: ${why}`;
    }
    log({
      time: new Date(),
      remote,
      user: w.user(req),
      method: req.method ?? '-',
      url: req.url ?? '-',
      status: res.headersSent ? res.statusCode : undefined,
      bytesIn: req.complete && Number.isSafeInteger(declared) ? declared : arrived,
      bytesOut: socket.bytesWritten - out0,
      ms: Number(process.hrtime.bigint() - started) / 1e6,
      note,
    });
  });
}
