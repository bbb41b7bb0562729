/**
 * The registry a pull-through cache (`mpk serve --proxy URL`) fronts: mpk's own registry client
 * (auth with docker's config and credential helpers, retries, the raw GET fast path), asked only
 * for what a pull needs: a tag's digest (HEAD), a manifest (GET, verified), a blob's size (HEAD)
 * and its bytes. Failures to reach it become one 503 naming the upstream.
 */
import { PackError } from '../../errors.js';
import { parseDigest } from '../../oci/digest.js';
import type { Descriptor } from '../../oci/descriptor.js';
import { parseManifest, type ParsedManifest } from '../../oci/manifest.js';
import { DockerCredentialStore } from '../../registry/auth/credentials.js';
import { RegistryClient } from '../../registry/client.js';
import { discard } from '../../registry/transport.js';
import { responseError } from '../../registry/errcode.js';
import { fetchBlob } from '../../registry/remote-blobs.js';
import { getManifest, headManifest } from '../../registry/remote-manifests.js';
import { RepoContext } from '../../registry/repo-context.js';
import type { Readable } from 'node:stream';
import { ServeError } from '../errors.js';

export interface UpstreamOptions {
  /** http(s)://HOST[:PORT] */
  url: string;
  env?: NodeJS.ProcessEnv;
  /** Attempts per request (default 2: a cache should answer from what it has, not wait). */
  retries?: number;
}

export class Upstream {
  readonly host: string;
  readonly url: string;
  private readonly client: RegistryClient;

  constructor(o: UpstreamOptions) {
    const m = /^(https?):\/\/([^/\s?#]+)\/?$/.exec(o.url);
    if (!m) throw new PackError('USAGE', `--proxy ${JSON.stringify(o.url)}: not http(s)://HOST[:PORT]`, { hint: 'e.g. --proxy https://registry.example.com' });
    this.url = `${m[1]}://${m[2]}`;
    this.host = m[2]!;
    this.client = new RegistryClient({ credentials: new DockerCredentialStore({ env: o.env ?? process.env }), plainHttp: m[1] === 'http', retries: o.retries ?? 2, retryBaseMs: 100 });
  }

  private ctx(name: string): RepoContext {
    return new RepoContext(this.client, this.host, name);
  }

  /** The descriptor a tag names upstream, or undefined when the upstream has no such tag. */
  async headTag(name: string, tag: string): Promise<Descriptor | undefined> {
    return this.call(() => headManifest(this.ctx(name), tag));
  }

  /** A manifest by digest, its bytes verified against the digest. */
  async manifest(name: string, digest: string): Promise<{ bytes: Buffer; parsed: ParsedManifest } | undefined> {
    return this.call(async () => {
      try {
        const m = await getManifest(this.ctx(name), digest);
        return { bytes: m.bytes, parsed: parseManifest(m.bytes, m.desc.mediaType) };
      } catch (e) {
        if ((e as { status?: number }).status === 404) return undefined;
        throw e;
      }
    });
  }

  /** A blob's size upstream, or undefined. */
  async blobSize(name: string, digest: string): Promise<number | undefined> {
    return this.call(async () => {
      const c = this.ctx(name);
      const res = await this.client.request(this.host, { method: 'HEAD', path: c.path(`blobs/${digest}`), scopes: c.pull, noRetry: true });
      await discard(res);
      if (res.status === 404) return undefined;
      if (res.status !== 200) throw await responseError('HEAD', res, `${name}@${digest}`);
      const len = Number(res.headers['content-length']);
      if (!Number.isSafeInteger(len) || len < 0) throw new PackError('REGISTRY', `${this.host}/${name}@${digest}: HEAD gave no length`);
      return len;
    });
  }

  /** The blob's bytes (length checked; the digest is the caller's to check). */
  async blob(name: string, digest: string, size: number): Promise<Readable> {
    parseDigest(digest);
    return this.call(() => fetchBlob(this.ctx(name), { mediaType: 'application/octet-stream', digest, size }));
  }

  private async call<R>(fn: () => Promise<R>): Promise<R> {
    try {
      return await fn();
    } catch (e) {
      throw this.down(e);
    }
  }

  /** A failure to reach the upstream, as the cache answers it: 503 naming the upstream. */
  down(e: unknown): ServeError {
    if (e instanceof ServeError) return e;
    const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
    return new ServeError(503, 'UNKNOWN', { upstream: this.url, reason: why }, { 'retry-after': '5' }, `the upstream registry ${this.url} could not be asked (${why}); only what this cache already holds can be pulled`);
  }

  close(): void {
    this.client.close();
  }
}
