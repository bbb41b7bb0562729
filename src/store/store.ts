/**
 * LocalStore: an OCI image layout on disk (`oci-layout`, `index.json`, `blobs/sha256/…`) that
 * implements Target, so other OCI tools (skopeo, oras, umoci) read it and push/pull can copy
 * between it and a registry. Many models share one blob pool, so identical files are stored once.
 */
import { homedir } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import type { Readable } from 'node:stream';
import { PackError } from '../errors.js';
import type { ByteSource, CallOptions, OpenAt, PushOptions, RangeFetcher, ResumablePusher, Target, Untagger } from '../content/storage.js';
import { ingestResumable, ingestWhole } from './partial.js';

/** Blobs from this size on are downloaded into resumable partial files. */
const RESUMABLE_MIN_BYTES = 1024 * 1024;
import type { Descriptor } from '../oci/descriptor.js';
import { MAX_MANIFEST_BYTES, childDescriptors, parseManifest, type ParsedManifest } from '../oci/manifest.js';
import { ANNOTATION_REF_NAME, OCI_INDEX, OCI_MANIFEST } from '../oci/media-types.js';
import { formatReference, parseReference, type Reference } from '../oci/reference.js';
import { BlobPool } from './blobs.js';
import { initLayout, readIndex, refNameOf, updateIndex } from './index-file.js';
import { openLease, type Lease } from './lease.js';

/** `$MPK_HOME`, else `~/.mpk`. */
export function defaultStoreRoot(env: NodeJS.ProcessEnv = process.env): string {
  return resolvePath(env.MPK_HOME || join(homedir(), '.mpk'));
}

export interface StoreEntry {
  /** The reference as stored (`name:tag`). */
  reference: string;
  descriptor: Descriptor;
}

export class LocalStore implements Target, Untagger, RangeFetcher, ResumablePusher {
  readonly blobs: BlobPool;
  private lease: Lease | undefined;

  private constructor(readonly root: string) {
    this.blobs = new BlobPool(root, async () => (this.lease ??= openLease(root)));
  }

  /** Opens (and creates if needed) the store at root. Call close() when done writing. */
  static async open(root: string = defaultStoreRoot()): Promise<LocalStore> {
    const abs = resolvePath(root);
    await initLayout(abs);
    return new LocalStore(abs);
  }

  /** Releases this process's lease: blobs it wrote but did not tag become prunable. */
  close(): void {
    this.lease?.close();
    this.lease = undefined;
  }

  fetch(desc: Descriptor, _opts?: CallOptions): Promise<Readable> {
    return this.blobs.open(desc);
  }

  /** The blob's bytes from offset on (a resumed upload re-reads from where the registry stopped). */
  fetchFrom(desc: Descriptor, offset: number, _opts?: CallOptions): Promise<Readable> {
    return this.blobs.open(desc, offset);
  }

  /** Downloads into a partial file that a later run resumes; verified before it becomes visible. */
  async pushFrom(expected: Descriptor, open: OpenAt, opts?: PushOptions): Promise<void> {
    if (await this.blobs.exists(expected)) {
      await this.blobs.hold(expected.digest);
      return;
    }
    // A partial file that a later run resumes is worth its claim file only for big blobs.
    if (expected.size < RESUMABLE_MIN_BYTES) await ingestWhole(this.blobs, expected, open, opts);
    else await ingestResumable(this.blobs, expected, open, opts);
  }

  exists(desc: Descriptor, _opts?: CallOptions): Promise<boolean> {
    return this.blobs.exists(desc);
  }

  push(expected: Descriptor, content: ByteSource, opts?: CallOptions): Promise<void> {
    return this.blobs.push(expected, content, opts);
  }

  /** Reads and validates a manifest or index blob. */
  async readManifest(desc: Descriptor): Promise<ParsedManifest> {
    const bytes = await this.blobs.read(desc, MAX_MANIFEST_BYTES);
    return parseManifest(bytes, desc.mediaType, desc.digest);
  }

  /** The stored name of a tag reference: `name:tag`. */
  static refName(ref: Reference): string {
    return formatReference({ ...ref, digest: undefined } as Reference);
  }

  async resolve(reference: string, _opts?: CallOptions): Promise<Descriptor> {
    const ref = parseReference(reference);
    const index = await readIndex(this.root);
    if (ref.digest) {
      const known = index.manifests.find((m) => m.digest === ref.digest);
      if (known) return strip(known);
      return this.sniff(ref.digest, reference);
    }
    const name = LocalStore.refName(ref);
    const hit = index.manifests.find((m) => refNameOf(m) === name);
    if (!hit) {
      throw new PackError('NOT_FOUND', `${name}: no such model in the store`, { hint: 'see `mpk ls` for what is there, or build or pull it' });
    }
    return strip(hit);
  }

  /** Describes a manifest blob known only by digest, from its own mediaType field. */
  private async sniff(digest: string, reference: string): Promise<Descriptor> {
    const size = await this.blobs.size(digest);
    if (size === undefined) {
      throw new PackError('NOT_FOUND', `${reference}: no manifest with that digest in the store`, { hint: 'see `mpk ls --digests`' });
    }
    const probe: Descriptor = { mediaType: OCI_MANIFEST, digest, size };
    const bytes = await this.blobs.read(probe, MAX_MANIFEST_BYTES);
    const parsed = parseManifest(bytes, undefined, digest);
    return { mediaType: parsed.mediaType, digest, size };
  }

  async tag(desc: Descriptor, reference: string, _opts?: CallOptions): Promise<void> {
    const ref = parseReference(reference);
    if (!ref.tag) throw new PackError('INVALID_REFERENCE', `${reference}: a tag is needed to name a model`, { hint: 'add :TAG' });
    const name = LocalStore.refName(ref);
    await updateIndex(this.root, async (doc) => {
      // Checked under the lock, so a concurrent prune cannot remove it between check and write.
      await this.checkComplete(desc, name);
      doc.manifests = doc.manifests.filter((m) => refNameOf(m) !== name);
      const entry: Descriptor = { mediaType: desc.mediaType, digest: desc.digest, size: desc.size };
      if (desc.artifactType) entry.artifactType = desc.artifactType;
      entry.annotations = { [ANNOTATION_REF_NAME]: name };
      doc.manifests.push(entry);
    });
  }

  /** A manifest may be named only when it and every blob it points at are stored. */
  private async checkComplete(desc: Descriptor, name: string): Promise<void> {
    if (!(await this.blobs.exists(desc))) {
      throw new PackError('NOT_FOUND', `${desc.digest}: manifest not in the store, cannot tag it ${name}`);
    }
    const parsed = await this.readManifest(desc);
    if (parsed.kind !== 'manifest') return; // an index may name platforms that were not pulled
    for (const child of childDescriptors(parsed)) {
      if (child === parsed.manifest.subject) continue;
      if (!(await this.blobs.exists(child))) {
        throw new PackError('NOT_FOUND', `${child.digest}: blob of ${name} missing from the store (removed by a concurrent prune?)`, {
          hint: 'run the command again',
        });
      }
    }
  }

  async untag(reference: string, _opts?: CallOptions): Promise<void> {
    const ref = parseReference(reference);
    await updateIndex(this.root, (doc) => {
      const before = doc.manifests.length;
      if (ref.digest && !ref.tag) {
        doc.manifests = doc.manifests.filter((m) => m.digest !== ref.digest);
      } else {
        const name = LocalStore.refName(ref);
        doc.manifests = doc.manifests.filter((m) => refNameOf(m) !== name || (ref.digest !== undefined && m.digest !== ref.digest));
      }
      if (doc.manifests.length === before) {
        throw new PackError('NOT_FOUND', `${reference}: no such model in the store`, { hint: 'see `mpk ls`' });
      }
    });
  }

  /** Every named entry of index.json, sorted by reference. */
  async list(): Promise<StoreEntry[]> {
    const index = await readIndex(this.root);
    return index.manifests
      .filter((m) => refNameOf(m) !== undefined)
      .map((m) => ({ reference: refNameOf(m)!, descriptor: strip(m) }))
      .sort((a, b) => (a.reference < b.reference ? -1 : a.reference > b.reference ? 1 : 0));
  }
}

function strip(d: Descriptor): Descriptor {
  const out: Descriptor = { mediaType: d.mediaType ?? OCI_INDEX, digest: d.digest, size: d.size };
  if (d.artifactType) out.artifactType = d.artifactType;
  return out;
}
