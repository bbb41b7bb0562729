/**
 * Server-sent events as OpenAI streams them: `data: <json>\n\n` per chunk, `data: [DONE]\n\n` at
 * the end. The status line and headers go out with the first event, not before, so an error found
 * before any text (a prompt longer than the context) is still a real 400 rather than an event.
 */
import type { ServerResponse } from 'node:http';
import type { ApiError } from './errors.js';

export class SseStream {
  private opened = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly headers: Record<string, string> = {},
  ) {}

  /** True once the status and headers are sent: errors from then on travel as events. */
  get started(): boolean {
    return this.opened;
  }

  send(event: unknown): void {
    this.open();
    if (!this.res.destroyed) this.res.write(`data: ${JSON.stringify(event)}\n\n`);
  }

  /** An error after the stream began: one `{"error":…}` event, then the stream ends. */
  fail(err: ApiError): void {
    this.send(err.body());
    this.res.end();
  }

  done(): void {
    this.open();
    if (!this.res.destroyed) this.res.end('data: [DONE]\n\n');
  }

  private open(): void {
    if (this.opened) return;
    this.opened = true;
    if (this.res.destroyed) return; // the client left: nothing to tell it
    this.res.writeHead(200, {
      ...this.headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      // Proxies (nginx) would otherwise hold the events back.
      'x-accel-buffering': 'no',
    });
    this.res.flushHeaders();
  }
}
