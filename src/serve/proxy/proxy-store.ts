/**
 * `mpk serve --proxy URL`: a pull-through cache. The registry's own storage (filesystem or S3)
 * holds what was pulled; this decorator fills it from the upstream on a miss:
 *   - a tag is answered from the cache while it was checked less than the TTL ago; after that a
 *     HEAD upstream revalidates it (a new digest is fetched and the tag moved); when the upstream
 *     cannot be reached, the cached tag is answered however old;
 *   - a manifest by digest is fetched once and then served from the cache for good;
 *   - a blob is fetched once however many clients ask at once (blob-fetch.ts), verified, then kept.
 * Revalidations and manifest fetches run one at a time per key too. Pushes and deletes are
 * refused by the app (a cache has one source); listings show what the cache holds.
 */
import type { Descriptor } from '../../oci/descriptor.js';
import type { ParsedManifest } from '../../oci/manifest.js';
import type { BlobBody, ReferrersPage, RegistryStorage, StoredManifest } from '../storage.js';
import type { BlobFetches } from './blob-fetch.js';
import type { Upstream } from './upstream.js';

export class ProxyStorage implements RegistryStorage {
  private readonly checked = new Map<string, number>();
  private readonly flights = new Map<string, Promise<unknown>>();

  constructor(
    private readonly inner: RegistryStorage,
    private readonly upstream: Upstream,
    private readonly fetches: BlobFetches,
    /** A tag checked upstream less than this long ago is answered from the cache. */
    private readonly ttlMs: number,
  ) {}

  /** One call per key at a time; later callers share the first one's answer. */
  private once<R>(key: string, fn: () => Promise<R>): Promise<R> {
    const running = this.flights.get(key) as Promise<R> | undefined;
    if (running) return running;
    const p = fn().finally(() => this.flights.delete(key));
    this.flights.set(key, p);
    return p;
  }

  async resolveTag(name: string, tag: string): Promise<string | undefined> {
    const key = `${name}\0${tag}`;
    const cached = await this.inner.resolveTag(name, tag);
    if (cached !== undefined && Date.now() - (this.checked.get(key) ?? 0) < this.ttlMs) return cached;
    return this.once(`tag\0${key}`, async () => {
      let desc: Descriptor | undefined;
      try {
        desc = await this.upstream.headTag(name, tag);
      } catch (e) {
        if (cached !== undefined) return cached; // the upstream is down: what the cache has
        throw e;
      }
      if (!desc) return undefined;
      if (desc.digest !== cached) {
        const m = await this.fetchManifest(name, desc.digest);
        if (!m) return undefined;
        await this.inner.putManifest(name, m.stored, m.parsed, tag);
      }
      this.checked.set(key, Date.now());
      return desc.digest;
    });
  }

  private fetchManifest(name: string, digest: string): Promise<{ stored: StoredManifest; parsed: ParsedManifest } | undefined> {
    return this.once(`manifest\0${name}\0${digest}`, async () => {
      const m = await this.upstream.manifest(name, digest);
      if (!m) return undefined;
      return { stored: { digest, mediaType: m.parsed.mediaType, bytes: m.bytes }, parsed: m.parsed };
    });
  }

  async getManifest(name: string, digest: string): Promise<StoredManifest | undefined> {
    const hit = await this.inner.getManifest(name, digest);
    if (hit) return hit;
    const m = await this.fetchManifest(name, digest);
    if (!m) return undefined;
    await this.inner.putManifest(name, m.stored, m.parsed);
    return m.stored;
  }

  async blobSize(name: string, digest: string, touchOlderMs?: number): Promise<number | undefined> {
    const hit = await this.inner.blobSize(name, digest, touchOlderMs);
    if (hit !== undefined) return hit;
    return this.fetches.sizeInFlight(digest) ?? this.once(`size\0${name}\0${digest}`, () => this.upstream.blobSize(name, digest));
  }

  async openBlob(digest: string, name?: string): Promise<BlobBody | undefined> {
    if (name !== undefined && (await this.inner.blobSize(name, digest)) === undefined) {
      const size = this.fetches.sizeInFlight(digest) ?? (await this.blobSize(name, digest));
      if (size === undefined) return undefined;
      const local = await this.inner.openBlob(digest, name);
      if (local) {
        // In the pool for another repository: linked here too, no fetch.
        await local.close();
        await this.inner.linkBlob(name, digest);
      } else {
        const body = await this.fetches.open(name, digest, size);
        if (body) return body;
      }
    }
    return this.inner.openBlob(digest, name);
  }

  contentSize(name: string, digest: string): Promise<number | undefined> {
    return this.inner.contentSize(name, digest);
  }
  linkBlob(name: string, digest: string): Promise<void> {
    return this.inner.linkBlob(name, digest);
  }
  unlinkBlob(name: string, digest: string): Promise<boolean> {
    return this.inner.unlinkBlob(name, digest);
  }
  putManifest(name: string, m: StoredManifest, parsed: ParsedManifest, tag?: string): Promise<void> {
    return this.inner.putManifest(name, m, parsed, tag);
  }
  deleteTag(name: string, tag: string): Promise<boolean> {
    return this.inner.deleteTag(name, tag);
  }
  deleteManifest(name: string, digest: string): Promise<boolean> {
    return this.inner.deleteManifest(name, digest);
  }
  listRepositories(): Promise<string[]> {
    return this.inner.listRepositories();
  }
  listTags(name: string): Promise<string[] | undefined> {
    return this.inner.listTags(name);
  }
  listReferrers(name: string, subject: string, page?: ReferrersPage): Promise<{ manifests: Descriptor[]; next?: string }> {
    return this.inner.listReferrers(name, subject, page);
  }
  readSmallBlob(name: string, digest: string, maxBytes: number): Promise<Buffer | undefined> {
    return this.inner.readSmallBlob(name, digest, maxBytes);
  }
  tagWrittenAt(name: string, tag: string): Promise<number | undefined> {
    return this.inner.tagWrittenAt(name, tag);
  }
  invalidate(): void {
    this.inner.invalidate();
  }
}
