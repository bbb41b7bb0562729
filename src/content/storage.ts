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
