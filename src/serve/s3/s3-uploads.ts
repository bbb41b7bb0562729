/**
 * Blob upload sessions in the bucket, so that any replica can continue any upload:
 *
 *   _uploads/<uuid>/state.json   repository, size, the S3 multipart upload and its parts, the tail
 *   _uploads/<uuid>/tail-<rand>  the last bytes, fewer than S3's 5 MiB part minimum
 *   _uploads/<uuid>/blob         the multipart upload's object, completed only at the closing PUT
 *
 * A body is cut into S3 multipart parts as it arrives (s3-parts.ts); what is left under the part
 * minimum is kept as the tail object and put in front of the next chunk, which is how chunks of any
 * size fit S3's rule. The state is replaced by a conditional PUT (If-Match): a request first takes
 * the session over (a new writer token), then commits the new size; one whose commit finds another
 * writer's state has its bytes dropped (416). So the state always names a prefix of the stream; a
 * replica killed mid-body leaves the state of its last commit, from which the client resumes on
 * any replica.
 *
 * The digest is computed as bytes pass (sha256, in this process). A replica that did not see every
 * byte (chunks went to several replicas) reads the completed object back once to hash it. Only when
 * the digest matches is the object copied (server-side) to `blobs/<alg>/<hex>`: nothing unverified
 * is ever visible under a digest. A whole blob sent in one request with its digest (a monolithic
 * POST, or a PUT carrying the body: docker, skopeo, curl) skips the copy: its multipart upload is
 * made at `blobs/<alg>/<hex>` itself and completed only if the digest matched, else aborted.
 */
import { createHash, randomUUID, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { ParsedDigest } from '../../oci/digest.js';
import { ServeError, uploadUnknown } from '../errors.js';
import { isUploadId } from '../router.js';
import type { AppendOptions, UploadSession, UploadStore } from '../storage.js';
import { rangeError } from '../uploads.js';
import { isNotFound, type Bucket } from './s3-client.js';
import { blobKey } from './s3-store.js';
import { bodyToParts, type Part } from './s3-parts.js';

const MiB = 1024 * 1024;

interface State {
  name: string;
  created: string;
  size: number;
  writer?: string;
  multipart?: string;
  /** The multipart upload's object: `_uploads/<uuid>/blob`, or `blobs/<alg>/<hex>` when the body came with its digest. */
  key?: string;
  parts: Part[];
  tail?: { key: string; size: number };
}

export interface S3Session extends UploadSession {
  /** Set while a body is being appended: stops it (DELETE of the session). */
  abort?: (() => void) | undefined;
}

const dir = (id: string): string => `_uploads/${id}/`;
const stateKey = (id: string): string => `${dir(id)}state.json`;
const blobTmp = (id: string): string => `${dir(id)}blob`;

export class S3Uploads implements UploadStore<S3Session> {
  readonly ttlMs: number;
  /** Closes that had to read the blob back to hash it (chunks went to several replicas). */
  rehashed = 0;
  /** This process's running sha256 of each session it has seen every byte of. */
  private readonly hashes = new Map<string, { hash: Hash; offset: number; used: number }>();

  constructor(
    private readonly bucket: Bucket,
    opts: { ttlMs?: number } = {},
  ) {
    this.ttlMs = opts.ttlMs ?? 24 * 3600_000;
  }

  /** Sessions are not counted on object storage (no --max-upload-sessions there). */
  async countSessions(): Promise<number> {
    return 0;
  }

  private async read(id: string): Promise<{ doc: State; etag: string } | undefined> {
    const got = await this.bucket.getSmall(stateKey(id), 4 * MiB);
    if (!got) return undefined;
    try {
      const doc = JSON.parse(got.bytes.toString('utf8')) as State;
      if (typeof doc.name !== 'string' || !Number.isSafeInteger(doc.size) || !Array.isArray(doc.parts)) return undefined;
      return { doc, etag: got.etag };
    } catch {
      return undefined;
    }
  }

  async create(name: string): Promise<S3Session> {
    const id = randomUUID();
    const doc: State = { name, created: new Date().toISOString(), size: 0, parts: [] };
    await this.bucket.put(stateKey(id), JSON.stringify(doc), { ifNoneMatch: '*' });
    this.hashes.set(id, { hash: createHash('sha256'), offset: 0, used: Date.now() });
    return { id, name };
  }

  async open(name: string, id: string): Promise<S3Session> {
    if (!isUploadId(id)) throw uploadUnknown(id);
    const st = await this.read(id);
    if (!st || st.doc.name !== name) throw uploadUnknown(id);
    return { id, name };
  }

  async size(s: S3Session): Promise<number> {
    const st = await this.read(s.id);
    if (!st) throw uploadUnknown(s.id);
    return st.doc.size;
  }

  async append(s: S3Session, body: Readable, o: AppendOptions): Promise<number> {
    const st = await this.read(s.id);
    if (!st || st.doc.name !== s.name) throw uploadUnknown(s.id);
    const base = st.doc;
    if (o.start !== undefined && o.start !== base.size) throw rangeError(s, base.size, o.location, `the chunk starts at ${o.start}; the upload holds ${base.size} bytes`);
    if (o.length === 0) return base.size;
    // Take the session over: a writer that was cut (its replica killed) cannot commit after this.
    const writer = randomUUID();
    const mine = await this.bucket.put(stateKey(s.id), JSON.stringify({ ...base, writer }), { ifMatch: st.etag });
    if (mine === false) throw rangeError(s, base.size, o.location, 'another request is writing to this upload');

    const local = this.hashes.get(s.id);
    const hash = local && local.offset === base.size ? local.hash : base.size === 0 ? createHash('sha256') : undefined;
    this.hashes.delete(s.id);
    const doc: State = { ...base, writer, parts: [...base.parts] };
    // A whole blob in one request whose digest is known up front (a monolithic POST, a PUT with the
    // body): the multipart upload goes straight to its final key, completed only once the digest
    // matched (else aborted), so no copy is needed and nothing unverified is ever visible.
    const direct = base.size === 0 && !base.multipart && !base.tail && o.digest !== undefined && o.digest.startsWith('sha256:');
    const target = base.key ?? (direct ? blobKey(o.digest!) : blobTmp(s.id));
    const head = base.tail ? await this.bucket.getSmall(base.tail.key, 64 * MiB) : undefined;
    if (base.tail && (!head || head.bytes.length !== base.tail.size)) throw uploadUnknown(s.id);
    const got = await bodyToParts(this.bucket, body, {
      key: target,
      multipart: base.multipart,
      next: (base.parts.at(-1)?.n ?? 0) + 1,
      head: head?.bytes,
      length: o.length,
      hash,
      onAbort: (fn) => (s.abort = fn),
    });
    const { received, failure, multipart, rest } = got;
    doc.parts.push(...got.parts);
    if (multipart) {
      doc.multipart = multipart;
      doc.key = target;
    }
    if (rest.length > 0) {
      const key = `${dir(s.id)}tail-${randomUUID()}`;
      await this.bucket.put(key, rest);
      doc.tail = { key, size: rest.length };
    } else delete doc.tail;
    doc.size = base.size + received;
    const committed = await this.bucket.put(stateKey(s.id), JSON.stringify(doc), { ifMatch: mine });
    if (committed === false) {
      if (doc.tail) await this.bucket.del(doc.tail.key).catch(() => undefined);
      throw rangeError(s, base.size, o.location, 'another request took this upload over');
    }
    if (base.tail && base.tail.key !== doc.tail?.key) await this.bucket.del(base.tail.key).catch(() => undefined);
    if (hash) this.hashes.set(s.id, { hash, offset: doc.size, used: Date.now() });
    if (failure !== undefined) throw failure;
    return doc.size;
  }

  async complete(s: S3Session, digest: string, parsed: ParsedDigest, _location: string, around: (commit: () => Promise<void>) => Promise<void> = (c) => c()): Promise<number> {
    const st = await this.read(s.id);
    if (!st || st.doc.name !== s.name) throw uploadUnknown(s.id);
    const doc = st.doc;
    const local = this.hashes.get(s.id);
    let got = parsed.algorithm === 'sha256' && local?.offset === doc.size ? `sha256:${local.hash.copy().digest('hex')}` : undefined;
    let src: string | undefined;
    const key = doc.key ?? blobTmp(s.id);
    if (doc.multipart && key !== blobTmp(s.id)) {
      // Uploaded straight to a final key: verified here, completed (made visible) only if it matched.
      if (got !== digest || key !== blobKey(digest)) {
        await this.remove(s.id);
        if (got === undefined) throw new ServeError(400, 'BLOB_UPLOAD_INVALID', { uuid: s.id, reason: 'the upload could not be verified here; send the blob again' });
        throw new ServeError(400, 'DIGEST_INVALID', { digest, reason: `the uploaded ${doc.size} bytes have digest ${got}` });
      }
      const multipart = doc.multipart;
      await around(async () => {
        const parts = doc.parts.map((p) => ({ PartNumber: p.n, ETag: p.etag }));
        if (doc.tail) {
          const n = (doc.parts.at(-1)?.n ?? 0) + 1;
          parts.push({ PartNumber: n, ETag: await this.bucket.copyPart(key, multipart, n, doc.tail.key) });
        }
        try {
          await this.bucket.completeMultipart(key, multipart, parts);
        } catch (e) {
          if (!isNotFound(e) || (await this.bucket.head(key))?.size !== doc.size) throw e;
        }
      });
      const done: State = { ...doc, parts: [] };
      delete done.multipart;
      await this.bucket.put(stateKey(s.id), JSON.stringify(done)).catch(() => undefined); // a retried close finds nothing to abort
      await this.remove(s.id);
      return doc.size;
    }
    if (doc.multipart) {
      const parts = doc.parts.map((p) => ({ PartNumber: p.n, ETag: p.etag }));
      if (doc.tail) {
        const n = (doc.parts.at(-1)?.n ?? 0) + 1;
        parts.push({ PartNumber: n, ETag: await this.bucket.copyPart(blobTmp(s.id), doc.multipart, n, doc.tail.key) });
      }
      try {
        await this.bucket.completeMultipart(blobTmp(s.id), doc.multipart, parts);
      } catch (e) {
        // Completed by a close that died before it recorded so (its replica killed): the object is there.
        if (!isNotFound(e) || (await this.bucket.head(blobTmp(s.id)))?.size !== doc.size) throw e;
      }
      const done: State = { ...doc, parts: [] };
      delete done.multipart;
      delete done.tail;
      await this.bucket.put(stateKey(s.id), JSON.stringify({ ...done, completed: true }));
      if (doc.tail) await this.bucket.del(doc.tail.key).catch(() => undefined);
      src = blobTmp(s.id);
    } else if (doc.tail) src = doc.tail.key;
    else if ((doc as { completed?: boolean }).completed) src = blobTmp(s.id);
    if (got === undefined) {
      this.rehashed++;
      got = await this.hashObject(src, parsed.algorithm);
    }
    if (got !== digest) {
      await this.remove(s.id);
      throw new ServeError(400, 'DIGEST_INVALID', { digest, reason: `the uploaded ${doc.size} bytes have digest ${got}` });
    }
    await around(async () => {
      const there = await this.bucket.head(blobKey(digest));
      if (there?.size === doc.size) return;
      if (src) await this.bucket.copy(src, blobKey(digest), doc.size);
      else await this.bucket.put(blobKey(digest), Buffer.alloc(0));
    });
    await this.remove(s.id);
    return doc.size;
  }

  private async hashObject(key: string | undefined, algorithm: ParsedDigest['algorithm']): Promise<string> {
    const h = createHash(algorithm);
    if (key !== undefined) {
      const body = await this.bucket.getStream(key);
      if (!body) throw new Error(`the upload's ${key} is gone`);
      for await (const c of body) h.update(c as Buffer);
    }
    return `${algorithm}:${h.digest('hex')}`;
  }

  async cancel(s: S3Session): Promise<void> {
    s.abort?.();
    await this.remove(s.id);
  }

  /** Removes a session: its multipart upload, objects, then its state. */
  private async remove(id: string): Promise<void> {
    this.hashes.delete(id);
    const st = await this.read(id);
    if (st?.doc.multipart) await this.bucket.abortMultipart(st.doc.key ?? blobTmp(id), st.doc.multipart);
    for await (const o of this.bucket.list(dir(id))) if (o.key !== stateKey(id)) await this.bucket.del(o.key);
    await this.bucket.del(stateKey(id));
  }

  /**
   * Removes sessions untouched for the time-to-live (by their state's time: every commit rewrites
   * it), and multipart uploads older than that which no session names (a replica killed between
   * starting one and committing).
   */
  async expire(o: { now?: number; ttlMs?: number; dryRun?: boolean } = {}): Promise<{ sessions: number; bytes: number }> {
    const { now = Date.now(), ttlMs = this.ttlMs, dryRun = false } = o;
    for (const [id, h] of this.hashes) if (now - h.used > 600_000) this.hashes.delete(id);
    const out = { sessions: 0, bytes: 0 };
    const live = new Set<string>();
    const sizes = new Map<string, { bytes: number; newest: number; state: boolean }>();
    for await (const obj of this.bucket.list('_uploads/')) {
      const id = obj.key.split('/')[1]!;
      const e = sizes.get(id) ?? { bytes: 0, newest: 0, state: false };
      e.bytes += obj.size;
      e.newest = Math.max(e.newest, obj.lastModified);
      if (obj.key === stateKey(id)) e.state = true;
      sizes.set(id, e);
    }
    for (const [id, e] of sizes) {
      if (now - e.newest <= ttlMs) {
        if (e.state) live.add(id);
        continue;
      }
      const st = e.state ? await this.read(id) : undefined;
      out.sessions += e.state ? 1 : 0;
      out.bytes += e.bytes + (st?.doc.parts.reduce((a, p) => a + p.size, 0) ?? 0);
      if (!dryRun) await this.remove(id);
    }
    for await (const u of this.bucket.listMultipart('_uploads/')) {
      const id = u.key.split('/')[1]!;
      if (live.has(id) || now - u.initiated <= ttlMs) continue;
      if (!dryRun) await this.bucket.abortMultipart(u.key, u.uploadId);
    }
    // Straight-to-final-key uploads last one request; one begun longer ago than the TTL was left by a dead replica.
    for await (const u of this.bucket.listMultipart('blobs/')) {
      if (now - u.initiated > ttlMs && !dryRun) await this.bucket.abortMultipart(u.key, u.uploadId);
    }
    return out;
  }

  close(): void {
    this.hashes.clear();
  }
}
