/**
 * Content-addressed storage interfaces, one method each, put together by extension (as oras-go's
 * content package). The local store implements Target; a remote repository will too, so push,
 * pull and copy are one graph copy between two Targets.
 *
 * Streams are Node `Readable`s: node:stream is faster than web streams on the hot path
 * (measured in ../shared/reference/architecture.md), and a Readable is an AsyncIterable.
 */
import type { Readable } from 'node:stream';
import type { Descriptor } from '../oci/descriptor.js';

export interface CallOptions {
  signal?: AbortSignal;
}

/** Bytes to push: a stream or async iterable of chunks, or the whole content. */
export type ByteSource = AsyncIterable<Uint8Array> | Uint8Array;

/** Reads content by descriptor. The caller must consume or destroy the stream. NOT_FOUND if absent. */
export interface Fetcher {
  fetch(desc: Descriptor, opts?: CallOptions): Promise<Readable>;
}

/** Writes content whose digest and size are known; verifies both before it becomes visible. */
export interface Pusher {
  push(expected: Descriptor, content: ByteSource, opts?: CallOptions): Promise<void>;
}

export interface ReadOnlyStorage extends Fetcher {
  exists(desc: Descriptor, opts?: CallOptions): Promise<boolean>;
}

export interface Storage extends ReadOnlyStorage, Pusher {}

/** Tag or digest reference → descriptor of the manifest. NOT_FOUND if unknown. */
export interface Resolver {
  resolve(reference: string, opts?: CallOptions): Promise<Descriptor>;
}

/** Points a reference at a manifest already stored. NOT_FOUND if the content is missing. */
export interface Tagger {
  tag(desc: Descriptor, reference: string, opts?: CallOptions): Promise<void>;
}

export interface TagResolver extends Tagger, Resolver {}

export interface ReadOnlyTarget extends ReadOnlyStorage, Resolver {}
export interface Target extends Storage, TagResolver {}

/** Optional capability: remove a reference (the content stays until garbage collection). */
export interface Untagger {
  untag(reference: string, opts?: CallOptions): Promise<void>;
}

export function isUntagger(t: object): t is Untagger {
  return typeof (t as Partial<Untagger>).untag === 'function';
}

/** Progress of one transfer: bytes of the blob handled so far (a resume starts at its offset). */
export interface PushOptions extends CallOptions {
  onProgress?(bytes: number, phase: 'resuming' | 'transferring' | 'verifying'): void;
  /**
   * The caller found the blob missing just before (a copy asks `exists` first): the pusher need not
   * ask again. Content that arrived meanwhile is stored again, harmlessly.
   */
  checked?: boolean;
}

/** Opens the content from a byte offset; the stream yields bytes offset..size-1. */
export type OpenAt = (offset: number) => Promise<Readable>;

/** Optional capability: reads content from a byte offset (HTTP Range, a file position). */
export interface RangeFetcher {
  fetchFrom(desc: Descriptor, offset: number, opts?: CallOptions): Promise<Readable>;
}

/**
 * Optional capability: a push that survives faults. When the transfer breaks, it reopens the
 * source at the offset it had reached (`open(offset)`) instead of starting again; a local store
 * also keeps partial bytes across processes.
 */
export interface ResumablePusher {
  pushFrom(expected: Descriptor, open: OpenAt, opts?: PushOptions): Promise<void>;
}

/** Optional capability: links a blob from another repository of the same registry. True when mounted. */
export interface Mounter {
  mount(desc: Descriptor, fromRepository: string, opts?: CallOptions): Promise<boolean>;
}

/** Optional capability: stores a manifest and points a tag at it in one step (PUT by tag). */
export interface ReferencePusher {
  pushReference(expected: Descriptor, content: Uint8Array, reference: string, opts?: CallOptions): Promise<void>;
}

/**
 * Optional capability: resolves a reference and fetches its manifest in one step (a registry's GET
 * by tag answers both, where resolve + fetch would be a HEAD and a GET). The bytes are verified
 * against the returned descriptor.
 */
export interface ReferenceFetcher {
  fetchReference(reference: string, opts?: CallOptions): Promise<{ desc: Descriptor; bytes: Buffer }>;
}

/**
 * Optional capability: keeps blobs about to be written from being removed until the writer is done
 * (a local store's lease against a concurrent prune), in one call for all of a manifest's blobs.
 */
export interface Holder {
  holdAll(descs: readonly Descriptor[]): Promise<void>;
}

export function isHolder(t: object): t is Holder {
  return typeof (t as Partial<Holder>).holdAll === 'function';
}

/** Optional capability: lists tags (pagination is hidden). */
export interface TagLister {
  tags(opts?: CallOptions & { last?: string; pageSize?: number }): AsyncIterable<string>;
}

/** Optional capability: deletes a manifest or blob. */
export interface Deleter {
  delete(desc: Descriptor, opts?: CallOptions): Promise<void>;
}

/**
 * Optional capability: a destination where sending a blob costs no more than asking whether it is
 * there (a tiny blob, one request either way: a registry that takes the single POST). The copy
 * then pushes it without the existence check; content already there is stored again, harmlessly.
 */
export interface BlindPusher {
  pushWithoutCheck(desc: Descriptor): boolean;
}

export function isBlindPusher(t: object): t is BlindPusher {
  return typeof (t as Partial<BlindPusher>).pushWithoutCheck === 'function';
}
export function isRangeFetcher(t: object): t is RangeFetcher {
  return typeof (t as Partial<RangeFetcher>).fetchFrom === 'function';
}
export function isResumablePusher(t: object): t is ResumablePusher {
  return typeof (t as Partial<ResumablePusher>).pushFrom === 'function';
}
export function isMounter(t: object): t is Mounter {
  return typeof (t as Partial<Mounter>).mount === 'function';
}
export function isReferenceFetcher(t: object): t is ReferenceFetcher {
  return typeof (t as Partial<ReferenceFetcher>).fetchReference === 'function';
}

export function isReferencePusher(t: object): t is ReferencePusher {
  return typeof (t as Partial<ReferencePusher>).pushReference === 'function';
}

/**
 * Optional capability of a fetched byte stream: chunks the reader is done with (written and
 * hashed, no reference kept) may be handed back and are reused for the next reads, so a long
 * download allocates a few buffers instead of one per MiB (garbage that would only be freed at
 * the next GC, tens of MiB of resident memory).
 */
export interface RecyclingStream {
  recycle(chunk: Buffer): void;
}
export function isRecyclingStream(s: object): s is RecyclingStream {
  return typeof (s as Partial<RecyclingStream>).recycle === 'function';
}
/**
 * Lets `out`, a stream that passes `src`'s chunks on unchanged and whole (never split, never
 * kept), hand them back to `src` when `src` recycles. Returns `out`.
 */
export function passRecycling<T extends object>(out: T, src: object): T {
  if (out !== src && isRecyclingStream(src)) Object.assign(out, { recycle: (b: Buffer) => src.recycle(b) });
  return out;
}
