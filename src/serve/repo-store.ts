/**
 * The registry's storage on disk. One content-addressed pool shared by every repository (the
 * store's BlobPool: temp → verify → 0444 → rename), and per repository only links:
 *
 *   blobs/<alg>/<hex>                                     the bytes (blobs and manifests), once
 *   repositories/<name>/_blobs/<alg>/<hex>                empty: the blob is visible in <name>
 *   repositories/<name>/_manifests/<alg>/<hex>            the manifest's media type
 *   repositories/<name>/_tags/<tag>                       the digest the tag points at
 *   repositories/<name>/_referrers/<alg>/<hex>/<alg>-<hex>  descriptor of a manifest whose subject is <alg>:<hex>
 *
 * Path components of names never start with `_`, so link folders cannot clash with repositories.
 * Small files are written to a temp file and renamed, so a reader sees the old or the new content.
 * This process owns the root (serve.lock), so caches of tags and manifest links stay coherent:
 * every write here updates them, and a read fills them only if no write happened meanwhile.
 */
import { readFile, readdir, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Descriptor } from '../oci/descriptor.js';
import { parseDigest, type ParsedDigest } from '../oci/digest.js';
import { MAX_MANIFEST_BYTES, type ParsedManifest } from '../oci/manifest.js';
import { BlobPool } from '../store/blobs.js';
import { Lease } from '../store/lease.js';
import { syncDir, syncFile } from './durable.js';
import { isNotFound, listRepositoryNames, removeFile, renameCreating, writeCreating } from './files.js';
import { Lru } from './lru.js';
import { isValidTag } from './router.js';
import { referrerEntry, referrersPage } from './referrers-page.js';
import { openFileBlob } from './send-file.js';
import type { BlobBody, RegistryStorage, StoredManifest } from './storage.js';

/** The registry does not use leases: it owns its root, and its collector has a grace period. */
class NoLease extends Lease {
  override add(): void {}
}
const NO_LEASE = new NoLease('');

export function registryPool(root: string): BlobPool {
  return new BlobPool(root, async () => NO_LEASE);
}

export type { StoredManifest } from './storage.js';

export class RepoStore implements RegistryStorage {
  readonly pool: BlobPool;
  private gen = 0;
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly tagCache = new Lru<string, string>(100_000);
  private readonly linkCache = new Lru<string, string>(100_000);
  private readonly bodyCache = new Lru<string, Buffer>(20_000, 64 * 1024 * 1024);

  constructor(
    readonly root: string,
    /** Flush every file before its rename and every folder after (`--fsync`). */
    readonly fsync = false,
  ) {
    this.pool = registryPool(root);
  }

  repoDir(name: string): string {
    return join(this.root, 'repositories', name);
  }
  blobLink(name: string, d: ParsedDigest): string {
    return join(this.root, 'repositories', name, '_blobs', d.algorithm, d.hex);
  }
  manifestLink(name: string, d: ParsedDigest): string {
    return join(this.root, 'repositories', name, '_manifests', d.algorithm, d.hex);
  }
  tagFile(name: string, tag: string): string {
    return join(this.root, 'repositories', name, '_tags', tag);
  }
  referrersDir(name: string, subject: ParsedDigest): string {
    return join(this.root, 'repositories', name, '_referrers', subject.algorithm, subject.hex);
  }

  /** A repository is a folder holding link folders; `a` above `a/b` is only a path to it. */
  async repoExists(name: string): Promise<boolean> {
    try {
      return (await readdir(this.repoDir(name), { withFileTypes: true })).some((e) => e.isDirectory() && e.name.startsWith('_'));
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
  }

  /** Size of a blob linked into `name`, or undefined. Touches a link older than `touchOlderMs`. */
  async blobSize(name: string, digest: string, touchOlderMs?: number): Promise<number | undefined> {
    const d = parseDigest(digest);
    const link = this.blobLink(name, d);
    try {
      const s = await stat(link);
      if (touchOlderMs !== undefined && Date.now() - s.mtimeMs > touchOlderMs) {
        // Keeps a blob the client was just told is here out of the collector's reach; done before
        // the answer, so a collection starting after it sees the new time.
        const now = new Date();
        await utimes(link, now, now).catch(() => undefined);
      }
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
    return this.pool.size(digest);
  }

  /** Size of a blob or manifest present in `name` (what a manifest may reference), or undefined. */
  async contentSize(name: string, digest: string): Promise<number | undefined> {
    const size = await this.blobSize(name, digest);
    if (size !== undefined) return size;
    try {
      await stat(this.manifestLink(name, parseDigest(digest)));
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
    return this.pool.size(digest);
  }

  async linkBlob(name: string, digest: string): Promise<void> {
    const link = this.blobLink(name, parseDigest(digest));
    await writeCreating(link, '');
    if (this.fsync) await syncDir(dirname(link));
  }

  async unlinkBlob(name: string, digest: string): Promise<boolean> {
    return removeFile(this.blobLink(name, parseDigest(digest)));
  }

  async resolveTag(name: string, tag: string): Promise<string | undefined> {
    const key = `${name}\0${tag}`;
    const hit = this.tagCache.get(key);
    if (hit !== undefined) return hit;
    const g = this.gen;
    let digest: string;
    try {
      digest = (await readFile(this.tagFile(name, tag), 'utf8')).trim();
      parseDigest(digest);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
    if (g === this.gen) this.tagCache.set(key, digest);
    return digest;
  }

  /** The manifest `digest` as stored in `name` (bytes verified when first read), or undefined. */
  async getManifest(name: string, digest: string): Promise<StoredManifest | undefined> {
    const key = `${name}\0${digest}`;
    let mediaType = this.linkCache.get(key);
    if (mediaType === undefined) {
      const g = this.gen;
      try {
        mediaType = (await readFile(this.manifestLink(name, parseDigest(digest)), 'utf8')).trim();
      } catch (e) {
        if (isNotFound(e)) return undefined;
        throw e;
      }
      if (g === this.gen) this.linkCache.set(key, mediaType);
    }
    let bytes = this.bodyCache.get(digest);
    if (!bytes) {
      const size = await this.pool.size(digest);
      if (size === undefined) return undefined; // a link without content: treated as absent (serve verify reports it)
      bytes = await this.pool.read({ mediaType: 'application/octet-stream', digest, size }, MAX_MANIFEST_BYTES);
      this.bodyCache.set(digest, bytes, bytes.length);
    }
    return { digest, mediaType, bytes };
  }

  /** The pool file of `digest`, opened; undefined when it is not there (collected meanwhile). */
  openBlob(digest: string): Promise<BlobBody | undefined> {
    return openFileBlob(this.pool.path(digest));
  }

  /** Runs manifest and tag changes of one repository one at a time (a delete never races a put). */
  private serial<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const next = (this.queues.get(name) ?? Promise.resolve()).then(fn, fn);
    const tail = next.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(name, tail);
    void tail.then(() => {
      if (this.queues.get(name) === tail) this.queues.delete(name);
    });
    return next;
  }

  /** Stores a validated manifest: content, link, then referrers entry and tag. */
  putManifest(name: string, m: StoredManifest, parsed: ParsedManifest, tag?: string): Promise<void> {
    return this.serial(name, () => this.put(name, m, parsed, tag));
  }

  private async put(name: string, m: StoredManifest, parsed: ParsedManifest, tag?: string): Promise<void> {
    const d = parseDigest(m.digest);
    if (!this.fsync) await this.pool.push({ digest: m.digest, size: m.bytes.length }, m.bytes);
    else if ((await this.pool.size(m.digest)) !== m.bytes.length) {
      const tmp = await this.pool.tempPath();
      await writeFile(tmp, m.bytes);
      await syncFile(tmp);
      await this.pool.commit(tmp, m.digest);
      await syncDir(dirname(this.pool.path(m.digest)));
    }
    await this.writeAtomic(this.manifestLink(name, d), m.mediaType);
    this.gen++;
    this.linkCache.set(`${name}\0${m.digest}`, m.mediaType);
    this.bodyCache.set(m.digest, m.bytes, m.bytes.length);
    const ref = referrerEntry(m, parsed);
    if (ref) await this.writeAtomic(join(this.referrersDir(name, parseDigest(ref.subject)), `${d.algorithm}-${d.hex}`), JSON.stringify(ref.entry));
    if (tag !== undefined) {
      await this.writeAtomic(this.tagFile(name, tag), m.digest);
      this.gen++;
      this.tagCache.set(`${name}\0${tag}`, m.digest);
    }
  }

  deleteTag(name: string, tag: string): Promise<boolean> {
    return this.serial(name, () => this.removeTag(name, tag));
  }

  private async removeTag(name: string, tag: string): Promise<boolean> {
    const gone = await removeFile(this.tagFile(name, tag));
    this.gen++;
    this.tagCache.delete(`${name}\0${tag}`);
    return gone;
  }

  /** Removes a manifest from `name`: its link, the tags that point at it, its referrers entry. */
  deleteManifest(name: string, digest: string): Promise<boolean> {
    return this.serial(name, () => this.removeManifest(name, digest));
  }

  private async removeManifest(name: string, digest: string): Promise<boolean> {
    const d = parseDigest(digest);
    const m = await this.getManifest(name, digest).catch(() => undefined);
    const gone = await removeFile(this.manifestLink(name, d));
    this.gen++;
    this.linkCache.delete(`${name}\0${digest}`);
    if (!gone) return false;
    for (const tag of (await this.listTags(name)) ?? []) {
      if ((await this.resolveTag(name, tag)) === digest) await this.removeTag(name, tag);
    }
    const subject = m ? subjectOf(m.bytes) : undefined;
    if (subject) await removeFile(join(this.referrersDir(name, subject), `${d.algorithm}-${d.hex}`));
    return true;
  }

  /** Tags of `name`, sorted by code unit (Go's sort.Strings order); undefined when no such repository. */
  async listTags(name: string): Promise<string[] | undefined> {
    try {
      return (await readdir(join(this.repoDir(name), '_tags'))).filter(isValidTag).sort();
    } catch (e) {
      if (!isNotFound(e)) throw e;
      return (await this.repoExists(name)) ? [] : undefined;
    }
  }

  /**
   * Descriptors of the manifests in `name` whose subject is `subject`, sorted by digest, one page:
   * those after the entry `after` that `keep` accepts, until `maxBytes` of JSON (at least one).
   * `next` names the last entry (file) given when more remain. One entry is read at a time.
   */
  async listReferrers(
    name: string,
    subject: string,
    page: { after?: string; maxBytes?: number; keep?: (d: Descriptor) => boolean } = {},
  ): Promise<{ manifests: Descriptor[]; next?: string }> {
    const dir = this.referrersDir(name, parseDigest(subject));
    let files: string[];
    try {
      files = await readdir(dir);
    } catch (e) {
      if (isNotFound(e)) return { manifests: [] };
      throw e;
    }
    return referrersPage(files.sort(), async (f) => {
      const desc = JSON.parse(await readFile(join(dir, f), 'utf8')) as Descriptor;
      await stat(this.manifestLink(name, parseDigest(desc.digest))); // an entry left by a crash mid-delete is skipped (serve verify reports it)
      return desc;
    }, page);
  }

  /** Every repository (a folder holding link folders), sorted. */
  listRepositories(): Promise<string[]> {
    return listRepositoryNames(join(this.root, 'repositories'));
  }

  /** Writes a small file whole: a temp file under ingest/, then rename (parents made on demand). */
  async writeAtomic(path: string, content: string): Promise<void> {
    const tmp = await this.pool.tempPath();
    try {
      await writeFile(tmp, content, { mode: 0o644 });
      if (this.fsync) await syncFile(tmp);
      await renameCreating(tmp, path);
      if (this.fsync) await syncDir(dirname(path));
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
  }

  /** Forgets cached links and tags (after the collector changed the tree). */
  async readSmallBlob(name: string, digest: string, maxBytes: number): Promise<Buffer | undefined> {
    const size = await this.contentSize(name, digest);
    if (size === undefined || size > maxBytes) return undefined;
    return this.pool.read({ mediaType: 'application/octet-stream', digest, size }, maxBytes); // verified by the pool
  }

  async tagWrittenAt(name: string, tag: string): Promise<number | undefined> {
    if (!isValidTag(tag)) return undefined;
    try {
      return (await stat(this.tagFile(name, tag))).mtimeMs;
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  invalidate(): void {
    this.gen++;
    this.tagCache.clear();
    this.linkCache.clear();
  }
}

/** The subject digest of manifest bytes, if it has one. */
export function subjectOf(bytes: Buffer): ParsedDigest | undefined {
  try {
    const doc = JSON.parse(bytes.toString('utf8')) as { subject?: { digest?: string } };
    return doc.subject?.digest ? parseDigest(doc.subject.digest) : undefined;
  } catch {
    return undefined;
  }
}
