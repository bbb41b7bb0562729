/**
 * Helpers for the tests of `mpk serve`: a server in-process on 127.0.0.1:0 with a temp root
 * (closed after the test), or one in its own process (for kill -9), and a raw HTTP client that
 * returns status, headers and body as they came (no retries, no redirects, no auth logic).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { startServer, type RunningServer, type ServeOptions } from '../serve/server.js';
import type { Rgw } from './rgw.js';
import { tempDir } from './tmp.js';

export type T = TestContext | { after(fn: () => unknown): void };

let s3: Rgw | undefined;

/** From now on, startTestServer serves from a new bucket of this RGW (the spec suite on S3). */
export function serveOnS3(rgw: Rgw): void {
  s3 = rgw;
}

/** The options that put a server on a new bucket of `rgw` (or on `storage`, to share one). */
export async function s3Options(rgw: Rgw, storage?: string): Promise<ServeOptions> {
  return { root: '', storage: storage ?? (await rgw.bucket()), s3Endpoint: rgw.endpoint, s3Credentials: rgw.credentials };
}

/** True when startTestServer serves from object storage (checks of the root's files do not apply). */
export const onS3 = (): boolean => s3 !== undefined;

/** The hex digests (sha256) in a server's pool: the root's blobs/sha256, or the bucket's objects. */
export async function poolHexes(server: { root: string }): Promise<string[]> {
  if (!server.root.startsWith('s3://')) return (await readdir(join(server.root, 'blobs', 'sha256')).catch(() => [])).sort();
  const { Bucket, parseS3Url } = await import('../serve/s3/s3-client.js'); // the SDK loads only for S3 tests
  const bucket = new Bucket(s3!.client, parseS3Url(server.root));
  const out: string[] = [];
  for await (const o of bucket.list('blobs/sha256/')) out.push(o.key.slice('blobs/sha256/'.length));
  return out.sort();
}

/** True (and the test skipped) when the suite runs on S3 and the test looks at the filesystem root. */
export function fsOnly(t: TestContext): boolean {
  if (!s3) return false;
  t.skip('looks at the filesystem root: not for object storage');
  return true;
}

export async function startTestServer(t: T, opts: Partial<ServeOptions> = {}): Promise<RunningServer> {
  if (s3) {
    const s = await startServer({ addr: '127.0.0.1:0', ...opts, ...(await s3Options(s3, opts.root?.startsWith('s3://') ? opts.root : undefined)) });
    t.after(() => s.close());
    return s;
  }
  const root = opts.root ?? join(await tempDir(t, 'mpk-serve-'), 'root');
  const s = await startServer({ addr: '127.0.0.1:0', ...opts, root });
  t.after(() => s.close());
  return s;
}

export interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
  json<J = any>(): J; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export interface ReqOptions {
  method?: string;
  headers?: Record<string, string | number>;
  body?: Buffer | string;
  /** PEM CA for https. */
  ca?: Buffer;
}

/** One request; `url` is absolute, or a path joined to `base`. */
export function request(url: string, opts: ReqOptions = {}): Promise<Res> {
  const u = new URL(url);
  const lib = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const body = opts.body === undefined ? undefined : Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(opts.body);
    const headers: Record<string, string | number> = { ...(opts.headers ?? {}) };
    if (body && headers['content-length'] === undefined && headers['transfer-encoding'] === undefined) headers['content-length'] = body.length;
    const req = lib.request(u, { method: opts.method ?? 'GET', headers, agent: false, ...(opts.ca ? { ca: opts.ca } : {}) }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        const b = Buffer.concat(parts);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b, text: b.toString('utf8'), json: () => JSON.parse(b.toString('utf8')) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
export const sha512 = (b: Buffer | string): string => `sha512:${createHash('sha512').update(b).digest('hex')}`;

/** Uploads a blob with one POST ?digest= and checks the 201. */
export async function putBlob(base: string, name: string, bytes: Buffer | string, headers: Record<string, string> = {}): Promise<string> {
  const digest = sha256(bytes);
  const r = await request(`${base}/v2/${name}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: bytes, headers: { 'content-type': 'application/octet-stream', ...headers } });
  if (r.status !== 201) throw new Error(`putBlob ${name} ${digest}: ${r.status} ${r.text}`);
  return digest;
}

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

/** A small image manifest whose config and one layer are uploaded to `name` first. */
export async function putImage(
  base: string,
  name: string,
  ref: string,
  opts: { seed?: string; headers?: Record<string, string>; extra?: Record<string, unknown> } = {},
): Promise<{ digest: string; bytes: Buffer; layer: string; config: string; res: Res }> {
  const seed = opts.seed ?? 'x';
  const config = Buffer.from(JSON.stringify({ seed }));
  const layer = Buffer.from(`layer of ${seed}`);
  const h = opts.headers ?? {};
  const cd = await putBlob(base, name, config, h);
  const ld = await putBlob(base, name, layer, h);
  const doc = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cd, size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: ld, size: layer.length }],
    ...(opts.extra ?? {}),
  };
  const bytes = Buffer.from(JSON.stringify(doc));
  const res = await request(`${base}/v2/${name}/manifests/${ref}`, { method: 'PUT', body: bytes, headers: { 'content-type': OCI_MANIFEST, ...h } });
  if (res.status !== 201) throw new Error(`putImage ${name}:${ref}: ${res.status} ${res.text}`);
  return { digest: sha256(bytes), bytes, layer: ld, config: cd, res };
}

export function specError(r: Res): { code: string; message: string; detail: unknown } {
  const doc = r.json<{ errors: Array<{ code: string; message: string; detail: unknown }> }>();
  if (!Array.isArray(doc.errors) || doc.errors.length === 0) throw new Error(`not a spec error body: ${r.text}`);
  return doc.errors[0]!;
}

export interface ServerProcess {
  url: string;
  host: string;
  pid: number;
  child: ChildProcess;
  output(): string;
  /** SIGKILL and wait. */
  kill9(): Promise<void>;
  /** SIGTERM and wait (graceful). */
  stop(): Promise<number | null>;
}

const BIN = new URL('./mpk-bin.ts', import.meta.url).pathname;

/** `mpk serve` in its own process (from source), on 127.0.0.1:0; killed by its PID after the test. */
export async function spawnServer(t: T, root: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', BIN, 'serve', '--root', root, '--addr', '127.0.0.1:0', '-q', ...extra], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null && child.pid) {
      process.kill(child.pid, 'SIGKILL');
      await exited;
    }
  });
  const deadline = Date.now() + 20_000;
  let url: string | undefined;
  while (!url && Date.now() < deadline) {
    url = /listening on (https?:\/\/[0-9.:]+)/.exec(out)?.[1];
    if (!url) {
      if (child.exitCode !== null) throw new Error(`mpk serve exited early (${child.exitCode}): ${out}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  if (!url) throw new Error(`mpk serve did not start: ${out}`);
  return {
    url,
    host: url.replace(/^https?:\/\//, ''),
    pid: child.pid!,
    child,
    output: () => out,
    async kill9() {
      process.kill(child.pid!, 'SIGKILL');
      await exited;
    },
    async stop() {
      process.kill(child.pid!, 'SIGTERM');
      return exited;
    },
  };
}
