/**
 * The registry's storage in an S3 bucket, shared by any number of stateless replicas. The same
 * layout as on disk, as object keys under the prefix:
 *
 *   blobs/<alg>/<hex>                                       the bytes (blobs and manifests), once
 *   repositories/<name>/_blobs/<alg>/<hex>                  the blob's size: it is visible in <name>
 *   repositories/<name>/_manifests/<alg>/<hex>              the manifest's media type
 *   repositories/<name>/_tags/<tag>                         the digest (empty: removed, see below)
 *   repositories/<name>/_referrers/<alg>/<hex>/<alg>-<hex>  descriptor of a manifest with that subject
 *   _catalog/<name>                                         the repository exists (one LIST for /v2/_catalog)
 *
 * Every object is written whole by one PUT, so a reader sees the old or the new one. Nothing is
 * cached that another replica may change (tags, links); only what a digest fixes (manifest bytes,
 * blob sizes). A tag is set by a plain PUT (the last writer wins, as with one server); removing
 * the tags of a deleted manifest is a read then a conditional PUT of an empty object (If-Match),
 * so a tag another replica moved meanwhile is left alone. Empty tag objects read as absent; the
 * collector deletes them.
 */
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { Descriptor } from '../../oci/descriptor.js';
import { digestBytes, parseDigest, type ParsedDigest } from '../../oci/digest.js';
import { MAX_MANIFEST_BYTES, type ParsedManifest } from '../../oci/manifest.js';
import { Lru } from '../lru.js';
import { referrerEntry, referrersPage } from '../referrers-page.js';
import { subjectOf } from '../repo-store.js';
import { isValidTag } from '../router.js';
import type { BlobBody, ReferrersPage, RegistryStorage, StoredManifest } from '../storage.js';
import type { Bucket } from './s3-client.js';

const hexPath = (d: ParsedDigest): string => `${d.algorithm}/${d.hex}`;
export const blobKey = (digest: string): string => `blobs/${hexPath(parseDigest(digest))}`;
export const repoKey = (name: string): string => `repositories/${name}/`;

export interface S3StoreOptions {
  /** Answer blob GETs with a 307 to a presigned URL valid this long (seconds); 0 = stream through. */
  redirectSeconds?: number;
}

export class S3Store implements RegistryStorage {
  private readonly bodyCache = new Lru<string, Buffer>(20_000, 64 * 1024 * 1024);
  private readonly sizeCache = new Lru<string, number>(100_000);
  private readonly known = new Set<string>();

  constructor(
    readonly bucket: Bucket,
    private readonly opts: S3StoreOptions = {},
  ) {}

  blobLink(name: string, digest: string): string {
    return `${repoKey(name)}_blobs/${hexPath(parseDigest(digest))}`;
  }
  manifestLink(name: string, digest: string): string {
    return `${repoKey(name)}_manifests/${hexPath(parseDigest(digest))}`;
  }
  tagKey(name: string, tag: string): string {
    return `${repoKey(name)}_tags/${tag}`;
  }
  referrersPrefix(name: string, subject: ParsedDigest): string {
    return `${repoKey(name)}_referrers/${hexPath(subject)}/`;
  }

  async listRepositories(): Promise<string[]> {
    const out: string[] = [];
    for await (const o of this.bucket.list('_catalog/')) out.push(o.key.slice('_catalog/'.length));
    return out.sort();
  }

  private async markRepository(name: string): Promise<void> {
    if (this.known.has(name)) return;
    await this.bucket.put(`_catalog/${name}`, '');
    this.known.add(name);
  }

  async blobSize(name: string, digest: string, touchOlderMs?: number): Promise<number | undefined> {
    const link = this.blobLink(name, digest);
    const got = await this.bucket.getSmall(link, 64);
    if (!got) return undefined;
    const size = await this.sizeOf(digest, got.bytes);
    if (touchOlderMs !== undefined && size !== undefined && Date.now() - got.lastModified > touchOlderMs) {
      // Keeps a blob the client was just told is here out of the collector's reach.
      await this.bucket.put(link, String(size)).catch(() => undefined);
    }
    return size;
  }

  private async sizeOf(digest: string, link: Buffer): Promise<number | undefined> {
    const n = Number(link.toString('utf8'));
    return link.length > 0 && Number.isSafeInteger(n) && n >= 0 ? n : this.poolSize(digest);
  }

  /** Size of the pool object, cached by digest (a digest fixes it). */
  async poolSize(digest: string): Promise<number | undefined> {
    const hit = this.sizeCache.get(digest);
    if (hit !== undefined) return hit;
    const info = await this.bucket.head(blobKey(digest));
    if (info) this.sizeCache.set(digest, info.size);
    return info?.size;
  }

  async contentSize(name: string, digest: string): Promise<number | undefined> {
    const size = await this.blobSize(name, digest);
    if (size !== undefined) return size;
    if (!(await this.bucket.head(this.manifestLink(name, digest)))) return undefined;
    return this.poolSize(digest);
  }

  /** Links a pool blob into `name`; the blob must be there (checked again once the link is written). */
  async linkBlob(name: string, digest: string): Promise<void> {
    this.sizeCache.delete(digest);
    const size = await this.poolSize(digest);
    if (size === undefined) throw new Error(`${digest} is not in the bucket's pool`);
    await this.markRepository(name);
    await this.bucket.put(this.blobLink(name, digest), String(size));
    if (!(await this.bucket.head(blobKey(digest)))) {
      // Swept by a collection on another replica between the check and the link.
      await this.bucket.del(this.blobLink(name, digest));
      throw new Error(`${digest} was collected while it was being linked`);
    }
  }

  async unlinkBlob(name: string, digest: string): Promise<boolean> {
    const link = this.blobLink(name, digest);
    if (!(await this.bucket.head(link))) return false;
    await this.bucket.del(link);
    return true;
  }

  async resolveTag(name: string, tag: string): Promise<string | undefined> {
    const got = await this.bucket.getSmall(this.tagKey(name, tag), 256);
    const digest = got?.bytes.toString('utf8').trim();
    if (!digest) return undefined;
    parseDigest(digest);
    return digest;
  }

  async getManifest(name: string, digest: string): Promise<StoredManifest | undefined> {
    const link = await this.bucket.getSmall(this.manifestLink(name, digest), 1024);
    if (!link) return undefined;
    const mediaType = link.bytes.toString('utf8').trim();
    let bytes = this.bodyCache.get(digest);
    if (!bytes) {
      const got = await this.bucket.getSmall(blobKey(digest));
      if (!got) return undefined; // a link without content: treated as absent
      const d = parseDigest(digest);
      if (digestBytes(got.bytes, d.algorithm) !== digest) throw new Error(`the bucket's ${blobKey(digest)} does not have digest ${digest}`);
      bytes = got.bytes;
      this.bodyCache.set(digest, bytes, bytes.length);
    }
    return { digest, mediaType, bytes };
  }

  /** Content, link, then referrers entry and tag: each visible only once what it names is. */
  async putManifest(name: string, m: StoredManifest, parsed: ParsedManifest, tag?: string): Promise<void> {
    const d = parseDigest(m.digest);
    if (!this.bodyCache.get(m.digest) && (await this.poolSize(m.digest)) !== m.bytes.length) await this.bucket.put(blobKey(m.digest), m.bytes);
    this.bodyCache.set(m.digest, m.bytes, m.bytes.length);
    await this.markRepository(name);
    await this.bucket.put(this.manifestLink(name, m.digest), m.mediaType);
    const ref = referrerEntry(m, parsed);
    if (ref) await this.bucket.put(`${this.referrersPrefix(name, parseDigest(ref.subject))}${d.algorithm}-${d.hex}`, JSON.stringify(ref.entry));
    if (tag !== undefined) await this.bucket.put(this.tagKey(name, tag), m.digest);
  }

  async deleteTag(name: string, tag: string): Promise<boolean> {
    const key = this.tagKey(name, tag);
    const info = await this.bucket.head(key);
    if (!info || info.size === 0) return false;
    await this.bucket.del(key);
    return true;
  }

  /** Removes a manifest from `name`: its link, the tags that still point at it, its referrers entry. */
  async deleteManifest(name: string, digest: string): Promise<boolean> {
    const d = parseDigest(digest);
    const m = await this.getManifest(name, digest).catch(() => undefined);
    const link = this.manifestLink(name, digest);
    if (!(await this.bucket.head(link))) return false;
    await this.bucket.del(link);
    for (const tag of (await this.listTags(name)) ?? []) {
      const got = await this.bucket.getSmall(this.tagKey(name, tag), 256);
      // Emptied only if no replica moved it meanwhile (If-Match).
      if (got && got.bytes.toString('utf8').trim() === digest) await this.bucket.put(this.tagKey(name, tag), '', { ifMatch: got.etag });
    }
    const subject = m ? subjectOf(m.bytes) : undefined;
    if (subject) await this.bucket.del(`${this.referrersPrefix(name, subject)}${d.algorithm}-${d.hex}`);
    return true;
  }

  async listTags(name: string): Promise<string[] | undefined> {
    const prefix = `${repoKey(name)}_tags/`;
    const tags: string[] = [];
    for await (const o of this.bucket.list(prefix)) {
      const tag = o.key.slice(prefix.length);
      if (o.size > 0 && isValidTag(tag)) tags.push(tag);
    }
    if (tags.length > 0) return tags.sort();
    return (await this.bucket.head(`_catalog/${name}`)) ? [] : undefined;
  }

  async listReferrers(name: string, subject: string, page: ReferrersPage = {}): Promise<{ manifests: Descriptor[]; next?: string }> {
    const prefix = this.referrersPrefix(name, parseDigest(subject));
    const bucket = this.bucket;
    async function* keys(): AsyncGenerator<string> {
      for await (const o of bucket.list(prefix, page.after !== undefined ? prefix + page.after : undefined)) {
        const f = o.key.slice(prefix.length);
        if (!f.includes('/')) yield f;
      }
    }
    return referrersPage(keys(), async (f) => {
      const got = await this.bucket.getSmall(prefix + f, MAX_MANIFEST_BYTES);
      if (!got) return undefined;
      const desc = JSON.parse(got.bytes.toString('utf8')) as Descriptor;
      return (await this.bucket.head(this.manifestLink(name, desc.digest))) ? desc : undefined; // undefined: left by a delete cut short
    }, page);
  }

  async openBlob(digest: string): Promise<BlobBody | undefined> {
    const size = await this.poolSize(digest);
    if (size === undefined) return undefined;
    const bucket = this.bucket;
    const key = blobKey(digest);
    return {
      size,
      async send(start: number, end: number, res: ServerResponse): Promise<void> {
        try {
          const body = await bucket.getStream(key, start, end);
          if (!body) throw new Error(`${key} is gone`);
          await pipeline(body, res);
        } catch {
          res.destroy(); // the bucket failed mid-body, or the client left: either way this response is over
        }
      },
      close: async () => undefined,
    };
  }

  async blobRedirect(digest: string): Promise<string | undefined> {
    const seconds = this.opts.redirectSeconds ?? 0;
    if (seconds <= 0) return undefined;
    const cmd = new GetObjectCommand({ Bucket: this.bucket.loc.bucket, Key: this.bucket.key(blobKey(digest)) });
    return getSignedUrl(this.bucket.client, cmd, { expiresIn: seconds });
  }

  async readSmallBlob(name: string, digest: string, maxBytes: number): Promise<Buffer | undefined> {
    const size = await this.contentSize(name, digest);
    if (size === undefined || size > maxBytes) return undefined;
    const got = await this.bucket.getSmall(blobKey(digest), maxBytes);
    if (!got || got.bytes.length !== size || digestBytes(got.bytes, parseDigest(digest).algorithm) !== digest) return undefined;
    return got.bytes;
  }

  async tagWrittenAt(name: string, tag: string): Promise<number | undefined> {
    if (!isValidTag(tag)) return undefined;
    return (await this.bucket.head(this.tagKey(name, tag)))?.lastModified;
  }

  invalidate(): void {
    this.sizeCache.clear();
  }
}
