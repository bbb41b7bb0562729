/**
 * LocalStore: an OCI image layout on disk (`oci-layout`, `index.json`, `blobs/sha256/…`) that
 * implements Target, so other OCI tools (skopeo, oras, umoci) read it and push/pull can copy
 * between it and a registry. Many models share one blob pool, so identical files are stored once.
 */
import { homedir } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import type { Readable } from 'node:stream';
import { PackError } from '../errors.js';
import type { ByteSource, CallOptions, Holder, OpenAt, PushOptions, RangeFetcher, ResumablePusher, Target, Untagger } from '../content/storage.js';
import { ingestResumable, ingestWhole } from './partial.js';
import type { Descriptor } from '../oci/descriptor.js';
import { MAX_MANIFEST_BYTES, childDescriptors, isManifestLike, parseManifest, type ParsedManifest } from '../oci/manifest.js';
import { ANNOTATION_REF_NAME, isManifestMediaType } from '../oci/media-types.js';
import { digestBytes, parseDigest } from '../oci/digest.js';
import { parseReference, type Reference } from '../oci/reference.js';
import { BlobPool } from './blobs.js';
import { entriesOf, findManifest, isBareDigest, strip, tagName } from './find-manifest.js';
import { readIndex, refNameOf, updateIndex } from './index-file.js';
import { openLease, type Lease } from './lease.js';
import { prepareStoreRoot } from './store-root.js';
import { VerifiedBlobs, verifiedLogPath } from './verified.js';

/** Blobs from this size on are downloaded into resumable partial files. */
const RESUMABLE_MIN_BYTES = 1024 * 1024;

/** `$MPK_HOME`, else `~/.mpk`. */
export function defaultStoreRoot(env: NodeJS.ProcessEnv = process.env): string {
  return resolvePath(env.MPK_HOME || join(homedir(), '.mpk'));
}

export interface StoreEntry {
  /** The reference as stored (`name:tag`). */
  reference: string;
  descriptor: Descriptor;
}

export class LocalStore implements Target, Untagger, RangeFetcher, ResumablePusher, Holder {
  readonly blobs: BlobPool;
  private lease: Lease | undefined;
  /** The last 4 manifests pushed, by digest: their verified bytes (for the tag that follows). */
  private readonly recentManifests = new Map<string, Buffer>();

  private constructor(
    readonly root: string,
    /** True when open() made a new store (the folder was missing or empty). */
    readonly created: boolean,
  ) {
    this.blobs = new BlobPool(root, async () => (this.lease ??= openLease(root)), new VerifiedBlobs(verifiedLogPath(root)));
  }

  /**
   * Opens the store at root, creating it in a new or empty folder (`created` says so). A
   * non-empty folder that is not a store (no `oci-layout`) is refused: USAGE, nothing written.
   * Call close() when done writing.
   */
  static async open(root: string = defaultStoreRoot()): Promise<LocalStore> {
    const abs = resolvePath(root);
    const { created } = await prepareStoreRoot(abs);
    return new LocalStore(abs, created);
  }

  /** Releases this process's lease: blobs it wrote but did not tag become prunable. */
  close(): void {
    this.lease?.close();
    this.lease = undefined;
    this.blobs.verified?.close();
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
    if (!opts?.checked && (await this.blobs.exists(expected))) {
      await this.blobs.hold(expected.digest);
      return;
    }
    // A partial file that a later run resumes is worth its claim file only for big blobs.
    if (expected.size < RESUMABLE_MIN_BYTES) await ingestWhole(this.blobs, expected, open, opts);
    else await ingestResumable(this.blobs, expected, open, opts);
  }

  /**
   * A blob that is stored and unchanged since verified. A manifest counts only with every blob it
   * names: a copy skips the sub-graph of a manifest it finds (the platform manifest of a pulled
   * index), so a changed layer under it would never be fetched again.
   */
  async exists(desc: Descriptor, _opts?: CallOptions): Promise<boolean> {
    if (!(await this.blobs.exists(desc))) return false;
    if (!isManifestMediaType(desc.mediaType)) return true;
    const parsed = await this.readManifest(desc).catch(() => undefined);
    if (parsed?.kind !== 'manifest') return false;
    for (const child of childDescriptors(parsed)) {
      if (child !== parsed.manifest.subject && !(await this.blobs.exists(child))) return false;
    }
    return true;
  }

  async push(expected: Descriptor, content: ByteSource, opts?: CallOptions): Promise<void> {
    const verified = await this.blobs.push(expected, content, opts);
    // A manifest is read back at once to tag it: its bytes are kept, once known to be the digest's
    // (verified as they were stored, or checked here when the blob was there already).
    if (isManifestLike(expected.mediaType) && content instanceof Uint8Array && content.byteLength <= MAX_MANIFEST_BYTES) {
      if (!verified && digestBytes(content, parseDigest(expected.digest).algorithm) !== expected.digest) return;
      // The same object: its parse is remembered by it (see parseManifest).
      this.recentManifests.set(expected.digest, Buffer.isBuffer(content) ? content : Buffer.from(content.buffer, content.byteOffset, content.byteLength));
      if (this.recentManifests.size > 4) this.recentManifests.delete(this.recentManifests.keys().next().value!);
    }
  }

  /** Puts the blobs in this process's lease at once: a pull calls it before fetching a manifest's blobs. */
  holdAll(descs: readonly Descriptor[]): Promise<void> {
    return this.blobs.holdAll(descs.map((d) => d.digest));
  }

  /**
   * Reads and validates a manifest or index blob. One this store was just given (`push`) is not
   * read back: its bytes, and their parse, are reused (a changed file is still caught by `state`).
   */
  async readManifest(desc: Descriptor): Promise<ParsedManifest> {
    const bytes = this.recentManifests.get(desc.digest) ?? (await this.blobs.read(desc, MAX_MANIFEST_BYTES));
    return parseManifest(bytes, desc.mediaType, desc.digest);
  }

  /** The stored name of a tag reference: `name:tag`. */
  static refName(ref: Reference): string {
    return tagName(ref);
  }

  /**
   * `name[:tag]`; `name[:tag]@sha256:…` (a manifest of that repository); or a bare `sha256:…`
   * (any manifest in the store). See find-manifest.ts.
   */
  async resolve(reference: string, _opts?: CallOptions): Promise<Descriptor> {
    return findManifest(this, await readIndex(this.root), reference);
  }

  async tag(desc: Descriptor, reference: string, _opts?: CallOptions): Promise<void> {
    if (isBareDigest(reference)) {
      throw new PackError('INVALID_REFERENCE', `${reference}: is a digest, not a name to give a model`, { hint: 'name it NAME:TAG, e.g. models/llama:v1' });
    }
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

  /** A manifest may be named only when it and every blob it points at are stored (and unchanged). */
  private async checkComplete(desc: Descriptor, name: string): Promise<void> {
    const state = await this.blobs.state(desc);
    if (state === 'absent') {
      throw new PackError('NOT_FOUND', `${desc.digest}: manifest not in the store, cannot tag it ${name}`);
    }
    if (state === 'changed') throw changedBlob(desc.digest, `manifest of ${name}`);
    const parsed = await this.readManifest(desc);
    if (parsed.kind !== 'manifest') return; // an index may name platforms that were not pulled
    for (const child of childDescriptors(parsed)) {
      if (child === parsed.manifest.subject) continue;
      const s = await this.blobs.state(child);
      if (s === 'absent') {
        throw new PackError('NOT_FOUND', `${child.digest}: blob of ${name} missing from the store (removed by a concurrent prune?)`, {
          hint: 'run the command again',
        });
      }
      if (s === 'changed') throw changedBlob(child.digest, `blob of ${name}`);
    }
  }

  /**
   * Removes names: `name:tag`; `name[:tag]@sha256:…` (those of that repository, and tag, with
   * that digest); a bare `sha256:…` every name of that manifest.
   */
  async untag(reference: string, _opts?: CallOptions): Promise<void> {
    await updateIndex(this.root, (doc) => {
      const before = doc.manifests.length;
      if (isBareDigest(reference) && !doc.manifests.some((m) => refNameOf(m) === reference)) {
        doc.manifests = doc.manifests.filter((m) => m.digest !== reference);
      } else {
        const ref = parseReference(reference);
        if (ref.digest) {
          const drop = new Set(entriesOf(doc, ref).filter((m) => m.digest === ref.digest));
          doc.manifests = doc.manifests.filter((m) => !drop.has(m));
        } else {
          const name = tagName(ref);
          doc.manifests = doc.manifests.filter((m) => refNameOf(m) !== name);
        }
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

function changedBlob(digest: string, what: string): PackError {
  return new PackError('CORRUPT', `${digest}: ${what} changed on disk since it was stored (edited through a hard link?)`, {
    hint: 'pull or build the model again: that replaces the blob',
  });
}
