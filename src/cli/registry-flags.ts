/** Flags every registry command takes (transport, parallelism, output), turned into TransferOptions. */
import { PackError } from '../errors.js';
import type { TransferOptions } from '../transfer/transfer.js';
import { wholeNumber } from './flag-values.js';
import type { Ctx, Options } from './context.js';
import { createTransferDisplay, displayModeFor, type TransferDisplay } from './transfer-progress.js';

export const REGISTRY_OPTIONS: Options = {
  'plain-http': { type: 'boolean' },
  insecure: { type: 'boolean' },
  'ca-file': { type: 'string' },
  concurrency: { type: 'string' },
  'chunk-size': { type: 'string' },
  'stall-timeout': { type: 'string' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
};

export const REGISTRY_HELP = [
  '--plain-http         use http:// (default only for localhost and 127.0.0.1)',
  '--insecure           accept any TLS certificate (test registries only)',
  '--ca-file FILE       also trust the CA certificates in this PEM file',
  '--concurrency N      blobs moved at once (default 8, and 64 of those up to 256 KiB)',
  '--chunk-size SIZE    upload blobs past SIZE in PATCHes of SIZE, e.g. 64MiB; 0: one PUT per blob (default: one PUT up to 64MiB, one PATCH past it)',
  '--stall-timeout SEC  give up a connection that moves no data for this long (default 60)',
  '--json               NDJSON progress events and a JSON result on stdout',
  '-q, --quiet          no progress',
];

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1000, kib: 1024, m: 1024 ** 2, mb: 1e6, mib: 1024 ** 2, g: 1024 ** 3, gb: 1e9, gib: 1024 ** 3 };

export function parseSize(flag: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new PackError('USAGE', `--${flag} ${JSON.stringify(text)}: not a size`, { hint: 'write e.g. 64MiB, 16M or 1048576' });
  return Math.round(Number(m[1]) * unit);
}

export function transferOptions(ctx: Ctx, v: Record<string, unknown>): TransferOptions {
  const o: TransferOptions = { env: ctx.env };
  if (ctx.signal) o.signal = ctx.signal;
  if (v['plain-http']) o.plainHttp = true;
  if (v.insecure) o.insecure = true;
  if (typeof v['ca-file'] === 'string') o.caFile = v['ca-file'];
  if (typeof v.concurrency === 'string') o.concurrency = wholeNumber('concurrency', v.concurrency, 1, '8');
  if (typeof v['chunk-size'] === 'string') o.chunkSize = parseSize('chunk-size', v['chunk-size']);
  if (v.referrers) o.referrers = true;
  if (typeof v['stall-timeout'] === 'string') o.stallMs = wholeNumber('stall-timeout', v['stall-timeout'], 1, '8') * 1000;
  o.onMirrorFailed = (mirror, e) => void ctx.stderr.write(`mpk: warning: mirror ${mirror} failed (${e instanceof Error ? e.message.split('\n')[0] : String(e)}); trying the next, then the registry itself\n`);
  return o;
}

/** The progress display for a transfer, wired to the options' event hook. */
export function transferDisplay(ctx: Ctx, v: Record<string, unknown>, o: TransferOptions, label: string): TransferDisplay {
  const mode = displayModeFor({ json: !!v.json, quiet: ctx.quiet || !!v.quiet }, !!ctx.stderr.isTTY);
  const display = createTransferDisplay(ctx.stderr, mode, { label, jsonOut: ctx.stdout });
  o.onEvent = (ev) => display.update(ev);
  return display;
}
