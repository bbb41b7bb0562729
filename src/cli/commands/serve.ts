/**
 * `mpk serve` (the embedded registry, until Ctrl-C / SIGTERM), `mpk serve gc` (offline collection)
 * and `mpk serve verify` (rehash and check a registry root).
 */
import { join, resolve } from 'node:path';
import { PackError } from '../../errors.js';
import { openBackend } from '../../serve/backend.js';
import { gcSummary } from '../../serve/gc.js';
import { startServer, type ServeOptions } from '../../serve/server.js';
import { verifyRegistry } from '../../serve/verify.js';
import { defaultStoreRoot } from '../../store/store.js';
import type { CommandSpec, Ctx } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { wholeNumber } from '../flag-values.js';
import { humanBytes } from '../format.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, '': 1000, m: 60_000, h: 3600_000, d: 86400_000 };

/** `90`, `90s`, `15m`, `24h`, `7d`, `500ms` → milliseconds. */
export function parseDuration(flag: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  const ms = m ? Math.round(Number(m[1]) * UNITS[m[2] ?? '']!) : NaN;
  if (!Number.isSafeInteger(ms)) throw new PackError('USAGE', `--${flag} ${JSON.stringify(text)}: not a duration`, { hint: 'write e.g. 30s, 15m, 24h or 7d' });
  return ms;
}

/** A duration that must not be zero (a zero would otherwise quietly mean the default). */
function positiveDuration(flag: string, text: string): number {
  const ms = parseDuration(flag, text);
  if (ms <= 0) throw new PackError('USAGE', `--${flag} ${JSON.stringify(text)}: must be longer than 0`, { hint: `e.g. --${flag} 24h` });
  return ms;
}

function rootOf(ctx: Ctx, v: Record<string, unknown>): string {
  return typeof v.root === 'string' ? resolve(ctx.cwd, v.root) : join(ctx.storeRoot ?? defaultStoreRoot(ctx.env), 'registry');
}

/** How long a presigned blob URL of --s3-redirect is valid. */
const S3_REDIRECT_SECONDS = 300;

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

export function serveOptions(ctx: Ctx, v: Record<string, unknown>): ServeOptions {
  const file = (k: string): string | undefined => (typeof v[k] === 'string' ? resolve(ctx.cwd, v[k] as string) : undefined);
  const o: ServeOptions = { root: rootOf(ctx, v), addr: str(v.addr) ?? '127.0.0.1:5000' };
  const htpasswd = file('htpasswd');
  const users = file('token-users');
  if (htpasswd) o.htpasswd = htpasswd;
  if (users) o.tokenUsers = users;
  const cert = file('tls-cert');
  const key = file('tls-key');
  if (cert) o.tlsCert = cert;
  if (key) o.tlsKey = key;
  if (v['insecure-open']) o.insecureOpen = true;
  if (v.fsync) o.fsync = true;
  if (v['no-catalog']) o.catalog = false;
  const del = str(v.delete);
  if (del !== undefined) {
    if (del !== 'all' && del !== 'digest' && del !== 'none') throw new PackError('USAGE', `--delete ${JSON.stringify(del)}: not all, digest or none`, { hint: 'all (default), digest (no tag deletes) or none' });
    o.deletes = del;
  }
  const fmt = str(v['log-format']);
  if (fmt !== undefined && fmt !== 'text' && fmt !== 'json') throw new PackError('USAGE', `--log-format ${JSON.stringify(fmt)}: not text or json`, { hint: 'use --log-format text or --log-format json' });
  if (fmt) o.logFormat = fmt;
  if (typeof v['upload-ttl'] === 'string') o.uploadTtlMs = positiveDuration('upload-ttl', v['upload-ttl']);
  if (typeof v['gc-interval'] === 'string') o.gcIntervalMs = parseDuration('gc-interval', v['gc-interval']);
  if (typeof v['gc-grace'] === 'string') o.gcGraceMs = parseDuration('gc-grace', v['gc-grace']);
  if (typeof v['token-ttl'] === 'string') o.tokenTtlSeconds = Math.max(1, Math.round(positiveDuration('token-ttl', v['token-ttl']) / 1000));
  if (typeof v['max-uploads'] === 'string') o.maxUploads = wholeNumber('max-uploads', v['max-uploads'], 1, '64');
  if (typeof v['max-upload-sessions'] === 'string') o.maxUploadSessions = wholeNumber('max-upload-sessions', v['max-upload-sessions'], 1, '10000');
  if (typeof v['min-upload-rate'] === 'string') o.minUploadRate = wholeNumber('min-upload-rate', v['min-upload-rate'], 0, '1024 (bytes/s; 0 = no minimum)');
  const storage = str(v.storage);
  if (storage !== undefined) o.storage = storage;
  const endpoint = str(v['s3-endpoint']);
  if (endpoint !== undefined) o.s3Endpoint = endpoint;
  const region = str(v['s3-region']);
  if (region !== undefined) o.s3Region = region;
  if (v['s3-redirect']) o.s3RedirectSeconds = S3_REDIRECT_SECONDS;
  const proxy = str(v.proxy);
  if (proxy !== undefined) {
    o.proxy = proxy;
    o.env = ctx.env;
  }
  if (typeof v['proxy-ttl'] === 'string') o.proxyTtlMs = parseDuration('proxy-ttl', v['proxy-ttl']);
  if (!ctx.quiet && !v.quiet) o.accessLog = (line) => void ctx.stdout.write(`${line}\n`);
  o.log = (line) => void ctx.stderr.write(`mpk serve: ${line}\n`);
  return o;
}

async function serve(ctx: Ctx, v: Record<string, unknown>): Promise<number> {
  const signal = ctx.signal;
  if (!signal) throw new PackError('USAGE', 'mpk serve runs until interrupted, and this caller gave no signal', { hint: 'run it from the mpk command, or call startServer() from the library' });
  const o = serveOptions(ctx, v);
  const server = await startServer(o);
  const mode = o.tokenUsers ? 'token' : o.htpasswd ? 'basic' : 'none';
  const web = o.catalog === false ? '' : `, web catalog ${server.url}/`;
  ctx.stdout.write(`mpk serve: listening on ${server.url} (root ${server.root}, auth ${mode}${web}); Ctrl-C stops\n`);
  await new Promise<void>((r) => (signal.aborted ? r() : signal.addEventListener('abort', () => r(), { once: true })));
  ctx.stderr.write('mpk serve: stopping (running requests may finish)\n');
  await server.close();
  return EXIT.OK;
}

async function gc(ctx: Ctx, v: Record<string, unknown>): Promise<number> {
  const graceMs = typeof v.grace === 'string' ? parseDuration('grace', v.grace) : 3600_000;
  const o = serveOptions(ctx, v);
  const backend = await openBackend(
    {
      root: o.root,
      storage: o.storage,
      s3Endpoint: o.s3Endpoint,
      s3Region: o.s3Region,
      uploads: typeof v['upload-ttl'] === 'string' ? { ttlMs: positiveDuration('upload-ttl', v['upload-ttl']) } : {},
    },
    'gc',
  );
  try {
    const r = await backend.collect({ graceMs, dryRun: !!v['dry-run'] });
    if (v.json) ctx.stdout.write(JSON.stringify(r, null, 2) + '\n');
    else {
      for (const p of r.problems) ctx.stderr.write(`mpk: warning: ${p}\n`);
      if (!ctx.quiet) {
        const dry = !!v['dry-run'];
        ctx.stdout.write(`${dry ? 'Would remove' : 'Removed'} ${gcSummary(r, humanBytes)}: ${humanBytes(r.bytesFreed)} ${dry ? 'would be freed' : 'freed'}\n`);
      }
    }
    return EXIT.OK;
  } finally {
    await backend.release();
  }
}

async function verify(ctx: Ctx, v: Record<string, unknown>): Promise<number> {
  if (typeof v.storage === 'string') throw new PackError('UNSUPPORTED', 'mpk serve verify checks a filesystem root; it does not read object storage yet', { hint: 'run it on a --root, or list the bucket with your S3 tools' });
  const root = rootOf(ctx, v);
  const r = await verifyRegistry(root);
  if (v.json) ctx.stdout.write(JSON.stringify(r, null, 2) + '\n');
  else {
    for (const p of r.problems) ctx.stdout.write(`${p.problem.toUpperCase()} ${p.where}: ${p.detail}\n`);
    if (!ctx.quiet) {
      ctx.stdout.write(
        `Checked ${r.blobs} blobs (${humanBytes(r.bytes)}), ${r.repositories} repositories, ${r.manifests} manifests, ${r.tags} tags: ${r.problems.length === 0 ? 'all good' : `${r.problems.length} problem(s)`}\n`,
      );
    }
  }
  return r.problems.length === 0 ? EXIT.OK : EXIT.INTEGRITY;
}

export const serveCommand: CommandSpec = {
  name: 'serve',
  usage: 'mpk serve [--root DIR | --storage s3://BUCKET[/PREFIX] [--s3-endpoint URL]] [--addr HOST:PORT] [--htpasswd FILE | --token-users FILE] [--tls-cert F --tls-key F] | mpk serve gc | mpk serve verify',
  summary:
    'Run an OCI registry (distribution-spec v1.1) that mpk, docker, skopeo and oras can push to and pull\n' +
    'from. Open only on 127.0.0.1 unless authentication is set (or --insecure-open). Blobs are stored once\n' +
    'for all repositories under --root (default $MPK_HOME/registry).\n' +
    '  mpk serve gc      remove what nothing references (the server must be stopped; or use --gc-interval)\n' +
    '  mpk serve verify  rehash every blob and check every link, manifest and tag of the root',
  help: [
    '--root DIR            registry data (default $MPK_HOME/registry, i.e. ~/.mpk/registry)',
    '--addr HOST:PORT      listen address (default 127.0.0.1:5000; :PORT = every interface; port 0 picks one)',
    '--htpasswd FILE       basic auth: bcrypt entries (htpasswd -B); every user may pull, push, delete',
    '--token-users FILE    token auth with per-repository access (JSON: {"users":{U:bcrypt},"access":[{"account":U,"name":"team/*","actions":["pull"]}]})',
    '--token-ttl DUR       lifetime of issued tokens (default 5m)',
    '--tls-cert FILE       serve HTTPS with this certificate (PEM) …',
    '--tls-key FILE        … and this private key (PEM)',
    '--insecure-open       allow no authentication on an address other than loopback',
    '--delete MODE         all (default), digest (refuse tag deletes) or none (refuse every DELETE)',
    '--upload-ttl DUR      remove upload sessions untouched this long (default 24h)',
    '--gc-interval DUR     collect garbage online this often (default off) …',
    '--gc-grace DUR        … sparing what is younger than this (default 1h; also for serve gc as --grace)',
    '--max-uploads N       requests writing blobs at once (default 64; more queue, then 429)',
    '--max-upload-sessions N  upload sessions open at once (default 10000; more: 429 until some finish or are cancelled)',
    '--min-upload-rate B   cut a blob body slower than B bytes/s over 60 s with a 408, keeping what arrived (default 1024; 0 = none)',
    '--no-catalog          serve no web catalog (pages at /, JSON at /-/api/); the registry API only',
    '--storage s3://BUCKET[/PREFIX]  keep everything in S3 object storage instead of --root: any number of',
    '                      replicas may share the bucket (credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE)',
    '--s3-endpoint URL     an S3-compatible store (Ceph RGW, MinIO...), path-style; --s3-region NAME (default AWS_REGION or us-east-1)',
    '--s3-redirect         answer blob GETs with a 307 to a presigned URL (5 min): the bytes bypass the server',
    '--proxy URL           a pull-through cache of the registry at URL (credentials from docker\'s config); pushes refused',
    '--proxy-ttl DUR       check a cached tag upstream again once it is this old (default 5m; by digest: cached for good)',
    '--fsync               flush every blob, manifest and tag to disk before answering (survives a power cut; slower)',
    '--log-format FMT      access log as text (default) or json, on stdout; -q for none',
    'gc: --grace DUR, --dry-run, --json     verify: --json',
  ],
  options: {
    root: { type: 'string' },
    addr: { type: 'string' },
    htpasswd: { type: 'string' },
    'token-users': { type: 'string' },
    'token-ttl': { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    'insecure-open': { type: 'boolean' },
    fsync: { type: 'boolean' },
    'no-catalog': { type: 'boolean' },
    delete: { type: 'string' },
    'upload-ttl': { type: 'string' },
    'gc-interval': { type: 'string' },
    'gc-grace': { type: 'string' },
    'max-uploads': { type: 'string' },
    'max-upload-sessions': { type: 'string' },
    'min-upload-rate': { type: 'string' },
    'log-format': { type: 'string' },
    storage: { type: 'string' },
    's3-endpoint': { type: 'string' },
    's3-region': { type: 'string' },
    's3-redirect': { type: 'boolean' },
    proxy: { type: 'string' },
    'proxy-ttl': { type: 'string' },
    grace: { type: 'string' },
    'dry-run': { type: 'boolean' },
    json: { type: 'boolean' },
    quiet: { type: 'boolean', short: 'q' },
  },
  args: [0, 1],
  async run(ctx, v, [sub]) {
    if (sub === undefined) return serve(ctx, v);
    if (sub === 'gc') return gc(ctx, v);
    if (sub === 'verify') return verify(ctx, v);
    throw new PackError('USAGE', `mpk serve: unknown subcommand ${JSON.stringify(sub)}`, { hint: 'mpk serve, mpk serve gc or mpk serve verify' });
  },
};
