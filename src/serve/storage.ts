/**
 * The one storage interface under the registry: every route, auth, limit and the collector talk
 * to these two, and the filesystem (repo-store.ts + uploads.ts) and S3 object storage
 * (s3/s3-store.ts + s3/s3-uploads.ts) sit behind them. The method names and meanings are those
 * of the filesystem RepoStore, which came first (the web catalog reads them too).
 */
import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Descriptor } from '../oci/descriptor.js';
import type { ParsedDigest } from '../oci/digest.js';
import type { ParsedManifest } from '../oci/manifest.js';

export interface StoredManifest {
  digest: string;
  mediaType: string;
  bytes: Buffer;
}

/** A blob opened for download: its size, then bytes `start..end` sent as a response body. */
export interface BlobBody {
  readonly size: number;
  /** Resolves when the body is sent or the client went away; never rejects. */
  send(start: number, end: number, res: ServerResponse): Promise<void>;
  close(): Promise<void>;
}

export interface ReferrersPage {
  after?: string;
  maxBytes?: number;
  keep?: (d: Descriptor) => boolean;
}

export interface RegistryStorage {
  /** Every repository, sorted. */
  listRepositories(): Promise<string[]>;
  /** Size of a blob linked into `name`, or undefined. Touches a link older than `touchOlderMs`. */
  blobSize(name: string, digest: string, touchOlderMs?: number): Promise<number | undefined>;
  /** Size of a blob or manifest present in `name` (what a manifest may reference), or undefined. */
  contentSize(name: string, digest: string): Promise<number | undefined>;
  linkBlob(name: string, digest: string): Promise<void>;
  unlinkBlob(name: string, digest: string): Promise<boolean>;
  resolveTag(name: string, tag: string): Promise<string | undefined>;
  getManifest(name: string, digest: string): Promise<StoredManifest | undefined>;
  putManifest(name: string, m: StoredManifest, parsed: ParsedManifest, tag?: string): Promise<void>;
  deleteTag(name: string, tag: string): Promise<boolean>;
  deleteManifest(name: string, digest: string): Promise<boolean>;
  /** Tags sorted by code unit; undefined when no such repository. */
  listTags(name: string): Promise<string[] | undefined>;
  listReferrers(name: string, subject: string, page?: ReferrersPage): Promise<{ manifests: Descriptor[]; next?: string }>;
  /** The pool blob `digest` opened for reading (asked for in repository `name`), or undefined when it is not there. */
  openBlob(digest: string, name?: string): Promise<BlobBody | undefined>;
  /** A short-lived URL the client may fetch the blob from directly (object storage), if enabled. */
  blobRedirect?(digest: string): Promise<string | undefined>;
  /** The bytes of a blob linked into `name` when it holds at most `maxBytes`, digest checked; else undefined (the catalog's configs and cards). */
  readSmallBlob(name: string, digest: string, maxBytes: number): Promise<Buffer | undefined>;
  /** When `tag` of `name` was last pointed (pushed), in ms since the epoch; undefined when unknown. */
  tagWrittenAt(name: string, tag: string): Promise<number | undefined>;
  /** Forgets cached state (after the collector changed the tree). */
  invalidate(): void;
}

/** What routes need of an upload session. */
export interface UploadSession {
  readonly id: string;
  readonly name: string;
}

export interface AppendOptions {
  start?: number | undefined;
  length?: number | undefined;
  location: string;
  /** The digest the client says the whole blob has, when the body is all of it (a hint: checked at close). */
  digest?: string | undefined;
}

export interface UploadStore<S extends UploadSession = UploadSession> {
  readonly ttlMs: number;
  countSessions(): Promise<number>;
  create(name: string, opts?: { transient?: boolean }): Promise<S>;
  /** The session `id` of repository `name`; else 404 BLOB_UPLOAD_UNKNOWN. */
  open(name: string, id: string): Promise<S>;
  size(s: S): Promise<number>;
  /** Appends a body in order; resolves with the new size (416 out of order, 400 size mismatch). */
  append(s: S, body: Readable, opts: AppendOptions): Promise<number>;
  /** Checks the digest (400 DIGEST_INVALID removes the session), then makes the blob visible through `around`. */
  complete(s: S, digest: string, parsed: ParsedDigest, location: string, around?: (commit: () => Promise<void>) => Promise<void>): Promise<number>;
  cancel(s: S): Promise<void>;
  expire(o?: { now?: number; ttlMs?: number; dryRun?: boolean }): Promise<{ sessions: number; bytes: number }>;
  close(): void;
}
