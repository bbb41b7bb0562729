/**
 * RemoteRepository: one repository of an OCI distribution registry, as a Target (so push, pull and
 * copy are the same graph copy as everything else) with the optional capabilities a registry has:
 * ranged fetch, resumable push, cross-repository mount, push by tag, tag listing, delete, referrers.
 */
import { Readable } from 'node:stream';
import { PackError } from '../errors.js';
import type {
  BlindPusher,
  ByteSource,
  CallOptions,
  Deleter,
  Mounter,
  OpenAt,
  RangeFetcher,
  ReferenceFetcher,
  ReferencePusher,
  ResumablePusher,
  TagLister,
  Target,
} from '../content/storage.js';
import type { Descriptor } from '../oci/descriptor.js';
import { isDigest } from '../oci/digest.js';
import { MAX_MANIFEST_BYTES, isManifestLike, parseManifest } from '../oci/manifest.js';
import { parseReference, type Reference } from '../oci/reference.js';
import type { RegistryClient } from './client.js';
import { blobExists, deleteBlob, fetchBlob } from './remote-blobs.js';
import { deleteManifest, getManifest, headManifest, putManifest } from './remote-manifests.js';
import { addToFallbackIndex, listReferrers } from './remote-referrers.js';
import { listTags } from './remote-tags.js';
import { RepoContext } from './repo-context.js';
import { mountBlob, uploadBlob, type UploadOptions } from './upload.js';
import { takesSinglePost } from './upload-small.js';

/** Blobs up to this size go without a HEAD first to a host that takes the single POST. */
export const BLIND_PUSH_MAX_BYTES = 64 * 1024;

export interface RepositoryOptions {
  /** Upload chunk size (0: one PUT per blob); default: one PUT up to 64 MiB, one PATCH past it. */
  chunkSize?: number;
}

export class RemoteRepository implements Target, RangeFetcher, ResumablePusher, Mounter, ReferenceFetcher, ReferencePusher, TagLister, Deleter, BlindPusher {
  readonly ctx: RepoContext;
  constructor(
    client: RegistryClient,
    readonly host: string,
    readonly name: string,
    private readonly opts: RepositoryOptions = {},
  ) {
    this.ctx = new RepoContext(client, host, name);
  }

  /**
   * A small blob (≤ 64 KiB) to a host that took a single POST: the POST carrying it is one round
   * trip, as the HEAD that would ask for it is, so the HEAD is left out.
   */
  pushWithoutCheck(desc: Descriptor): boolean {
    if (isManifestLike(desc.mediaType) || desc.size > BLIND_PUSH_MAX_BYTES) return false;
    if (this.opts.chunkSize !== undefined && this.opts.chunkSize > 0 && this.opts.chunkSize < desc.size) return false;
    return takesSinglePost(this.ctx);
  }

  /** The repository a reference names; it must carry a registry host. */
  static fromReference(client: RegistryClient, ref: Reference, opts?: RepositoryOptions): RemoteRepository {
    if (!ref.registry) {
      throw new PackError('INVALID_REFERENCE', `${ref.repository}: no registry host in the reference`, {
        hint: 'write it as HOST[:PORT]/NAME:TAG, e.g. localhost:5000/models/llama:v1',
      });
    }
    return new RemoteRepository(client, ref.registry, ref.repository, opts);
  }

  /** `host/name`, for messages and mount sources. */
  get fullName(): string {
    return `${this.host}/${this.name}`;
  }

  /** A tag, a digest, or a whole reference to this repository → what to put in the URL. */
  private refPart(reference: string): string {
    if (isDigest(reference) || /^[\w][\w.-]{0,127}$/.test(reference)) return reference;
    const r = parseReference(reference);
    return r.digest ?? r.tag ?? 'latest';
  }

  async resolve(reference: string, opts?: CallOptions): Promise<Descriptor> {
    const part = this.refPart(reference);
    const d = await headManifest(this.ctx, part, opts?.signal);
    if (!d) throw notFound(this.fullName, part);
    return d;
  }

  /** GET by tag or digest: the descriptor and the verified bytes in one round trip. */
  async fetchReference(reference: string, opts?: CallOptions): Promise<{ desc: Descriptor; bytes: Buffer }> {
    const part = this.refPart(reference);
    try {
      return await getManifest(this.ctx, part, opts?.signal);
    } catch (e) {
      if (e instanceof PackError && e.code === 'NOT_FOUND') throw notFound(this.fullName, part);
      throw e;
    }
  }

  async exists(desc: Descriptor, opts?: CallOptions): Promise<boolean> {
    if (isManifestLike(desc.mediaType)) {
      const d = await headManifest(this.ctx, desc.digest, opts?.signal);
      return !!d && d.size === desc.size;
    }
    return blobExists(this.ctx, desc, opts?.signal);
  }

  async fetch(desc: Descriptor, opts?: CallOptions): Promise<Readable> {
    if (isManifestLike(desc.mediaType)) return Readable.from([(await this.fetchManifest(desc, opts)).bytes]);
    return fetchBlob(this.ctx, desc, 0, opts?.signal);
  }

  fetchFrom(desc: Descriptor, offset: number, opts?: CallOptions): Promise<Readable> {
    return fetchBlob(this.ctx, desc, offset, opts?.signal);
  }

  /** The manifest's bytes, checked against desc. */
  async fetchManifest(desc: Descriptor, opts?: CallOptions): Promise<{ bytes: Buffer; desc: Descriptor }> {
    const m = await getManifest(this.ctx, desc.digest, opts?.signal);
    if (m.bytes.length !== desc.size) throw new PackError('SIZE_MISMATCH', `${desc.digest}: manifest is ${m.bytes.length} bytes, expected ${desc.size}`);
    return m;
  }

  async push(expected: Descriptor, content: ByteSource, opts?: UploadOptions): Promise<void> {
    if (isManifestLike(expected.mediaType)) {
      await this.pushManifest(expected, await collect(content, MAX_MANIFEST_BYTES), expected.digest, opts);
      return;
    }
    let used = false;
    await uploadBlob(this.ctx, expected, async () => {
      if (used) throw new PackError('NETWORK', `${expected.digest}: upload failed and its source cannot be read again`);
      used = true;
      return content instanceof Uint8Array ? Readable.from([content]) : Readable.from(content);
    }, { chunkSize: this.opts.chunkSize, ...opts });
  }

  async pushFrom(expected: Descriptor, open: OpenAt, opts?: UploadOptions): Promise<void> {
    if (isManifestLike(expected.mediaType)) {
      await this.push(expected, await open(0), opts);
      return;
    }
    await uploadBlob(this.ctx, expected, open, { chunkSize: this.opts.chunkSize, ...opts });
  }

  mount(desc: Descriptor, fromRepository: string, opts?: CallOptions): Promise<boolean> {
    return mountBlob(this.ctx, desc, fromRepository, opts?.signal);
  }

  async pushReference(expected: Descriptor, content: Uint8Array, reference: string, opts?: CallOptions): Promise<void> {
    await this.pushManifest(expected, Buffer.from(content), this.refPart(reference), opts);
  }

  async tag(desc: Descriptor, reference: string, opts?: CallOptions): Promise<void> {
    const { bytes } = await this.fetchManifest(desc, opts);
    await putManifest(this.ctx, desc, bytes, this.refPart(reference), opts?.signal);
  }

  private async pushManifest(desc: Descriptor, bytes: Buffer, reference: string, opts?: CallOptions): Promise<void> {
    const parsed = parseManifest(bytes, desc.mediaType, desc.digest);
    const subjectHeader = await putManifest(this.ctx, desc, bytes, reference, opts?.signal);
    const doc = parsed.kind === 'manifest' ? parsed.manifest : parsed.index;
    if (doc.subject && !subjectHeader) await addToFallbackIndex(this.ctx, desc, doc, opts?.signal);
  }

  tags(opts?: CallOptions & { last?: string; pageSize?: number }): AsyncIterable<string> {
    return listTags(this.ctx, { ...opts, signal: opts?.signal });
  }

  async delete(desc: Descriptor, opts?: CallOptions): Promise<void> {
    if (isManifestLike(desc.mediaType)) await deleteManifest(this.ctx, desc.digest, opts?.signal);
    else await deleteBlob(this.ctx, desc, opts?.signal);
  }

  /** Manifests whose subject is `subject` (referrers API, or the tag-schema fallback). */
  referrers(subject: Descriptor, artifactType?: string, opts?: CallOptions): Promise<Descriptor[]> {
    return listReferrers(this.ctx, subject.digest, artifactType, opts?.signal);
  }
}

async function collect(content: ByteSource, max: number): Promise<Buffer> {
  if (content instanceof Uint8Array) return Buffer.from(content.buffer, content.byteOffset, content.byteLength);
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of content) {
    n += c.byteLength;
    if (n > max) throw new PackError('SIZE_EXCEEDS_LIMIT', `manifest over the ${max}-byte limit`);
    chunks.push(Buffer.from(c));
  }
  return Buffer.concat(chunks);
}

function notFound(fullName: string, part: string): PackError {
  return new PackError('NOT_FOUND', `${fullName}${isDigest(part) ? '@' : ':'}${part}: not found in the registry`, {
    hint: `check the name and tag (mpk tags ${fullName} lists them)`,
  });
}
