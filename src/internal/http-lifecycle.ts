/**
 * What `mpk serve` and `mpk api` share about their HTTP server's life: listening with a clear
 * error (the address in use names what to do), counting requests in flight, and a graceful close
 * (stop accepting, let running requests finish for a while, then cut the rest).
 */
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PackError } from '../errors.js';

export async function listenOn(server: http.Server, host: string, port: number, inUseHint: string): Promise<number> {
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new PackError('IO', `cannot listen on ${host}:${port}: ${code === 'EADDRINUSE' ? 'the address is in use' : (e as Error).message}`, {
      cause: e,
      hint: code === 'EADDRINUSE' ? inUseHint : 'check --addr',
    });
  }
  return (server.address() as AddressInfo).port;
}

/** Requests in flight, and the close that waits for them. */
export class InFlight {
  private count = 0;
  private drained: (() => void) | undefined;
  closing = false;

  /** Call when a request arrives; call what it returns (once) when the request is over. */
  begin(res: http.ServerResponse): () => void {
    this.count++;
    if (this.closing) res.setHeader('connection', 'close');
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.count--;
      if (this.closing && this.count === 0) this.drained?.();
    };
  }

  /** Stops accepting, waits up to `graceMs` for running requests, then cuts every connection. */
  async close(server: http.Server, graceMs: number): Promise<void> {
    this.closing = true;
    const done = new Promise<void>((r) => server.close(() => r()));
    server.closeIdleConnections();
    if (this.count > 0) {
      await new Promise<void>((resolve) => {
        this.drained = resolve;
        setTimeout(resolve, graceMs).unref();
      });
    }
    server.closeAllConnections();
    await done;
  }
}
