/**
 * Graph copy between any two stores: push, pull and copy are all this walk (as oras-go's Copy).
 * - Children before parents: a manifest is written only after every blob it names is in place
 *   and verified (by the destination: a registry checks the digest of every upload, the local
 *   store hashes every byte it ingests); the tag comes last.
 * - Each node once (a map of promises, so diamond graphs are fine); what the destination has is
 *   skipped (HEAD), and an existing manifest skips its whole sub-graph.
 * - Blobs: a cross-repository mount when a candidate repository is known; otherwise a resumable
 *   transfer when both sides can (Range reads, partial files); bounded parallelism.
 */
import { setMaxListeners } from 'node:events';
import { PackError } from '../errors.js';
import {
  isBlindPusher,
  isHolder,
  isMounter,
  isReferenceFetcher,
  isRangeFetcher,
  isReferencePusher,
  isResumablePusher,
  type CallOptions,
  type OpenAt,
  type ReadOnlyStorage,
  type ReadOnlyTarget,
  type Storage,
  type Target,
} from '../content/storage.js';
import type { Descriptor } from '../oci/descriptor.js';
import { VerifyStream } from '../oci/digest.js';
import { MAX_MANIFEST_BYTES, childDescriptors, isManifestLike, parseManifest } from '../oci/manifest.js';
import { ANNOTATION_TITLE, isIndexMediaType } from '../oci/media-types.js';
import { Limiter } from '../internal/limiter.js';
import { indexLevels } from './index-depth.js';
import { chooseNested, manifestMatchesVariant, type Choice, type Selection } from './select.js';

/** Indexes nested deeper than this are refused (INVALID_MANIFEST) before anything is stored. */
export const MAX_INDEX_DEPTH = 8;

export type CopyState = 'waiting' | 'exists' | 'mounted' | 'uploading' | 'downloading' | 'resuming' | 'verifying' | 'done' | 'failed';

/** One blob's progress (the CLI's transfer display takes these as they are). */
export interface CopyEvent {
  digest: string;
  mediaType: string;
  size: number;
  title?: string;
  state: CopyState;
  bytes?: number;
  error?: string;
}

/** Blobs moved at once: enough to hide round trips for many small blobs; large ones share the link. */
export const DEFAULT_COPY_CONCURRENCY = 8;
/**
 * Small blobs (up to SMALL_COPY_BYTES) have their own default limit, this many times the default: each
 * costs a round trip and a file, not bandwidth or memory, and a 10,000-file model is mostly these
 * (2,000 files from mpk serve: 2.0-2.1 s with 8 in flight, 1.5-1.7 s with 64).
 */
export const SMALL_COPY_FACTOR = 8;
export const SMALL_COPY_BYTES = 256 * 1024;

export interface CopyGraphOptions extends CallOptions {
  concurrency?: number;
  /** Which word describes moving bytes (`uploading` for push, `downloading` for pull). */
  verb?: 'uploading' | 'downloading';
  onEvent?(ev: CopyEvent): void;
  /** Repositories of the destination's registry that may already hold the blob (cross-repo mount). */
  mountFrom?(desc: Descriptor): string[];
  /**
   * Visit the root's children even when the destination has the root (default false: a registry
   * never holds a manifest whose blobs are missing). A local store sets it: checking is a stat per
   * blob, and it repairs a store from which blobs were removed.
   */
  revisitExistingRoot?: boolean;
}

export interface CopyStats {
  blobs: number;
  /** Blobs (and manifests) whose bytes moved. */
  transferred: number;
  /** Of those, bytes. */
  bytes: number;
  skipped: number;
  mounted: number;
}

/**
 * `fetched` holds manifest bytes the caller already read (verified), by digest: copy() passes the
 * root's, so the root manifest is fetched once, not twice.
 */
export async function copyGraph(src: ReadOnlyStorage, dst: Storage, root: Descriptor, opts: CopyGraphOptions = {}, fetched?: ReadonlyMap<string, Buffer>): Promise<CopyStats> {
  // A concurrency the caller sets holds for every blob; the default lets more small ones go at once.
  const given = opts.concurrency && opts.concurrency > 0 ? opts.concurrency : undefined;
  const concurrency = given ?? DEFAULT_COPY_CONCURRENCY;
  const limiter = new Limiter(concurrency);
  const smallLimiter = new Limiter(given ?? DEFAULT_COPY_CONCURRENCY * SMALL_COPY_FACTOR);
  const seen = new Map<string, Promise<void>>();
  const stats: CopyStats = { blobs: 0, transferred: 0, bytes: 0, skipped: 0, mounted: 0 };
  const verb = opts.verb ?? 'uploading';
  const emit = (d: Descriptor, state: CopyState, bytes?: number, error?: string) => {
    if (!opts.onEvent) return;
    const ev: CopyEvent = { digest: d.digest, mediaType: d.mediaType, size: d.size, state };
    const title = d.annotations?.[ANNOTATION_TITLE];
    if (title) ev.title = title;
    if (bytes !== undefined) ev.bytes = bytes;
    if (error) ev.error = error;
    opts.onEvent(ev);
  };
  // The first failure cancels the rest: transfers in flight stop, queued ones never start; the
  // caller sees that first error only after everything has settled (no writes after it returns).
  const ac = new AbortController();
  const onAbort = () => ac.abort(opts.signal?.reason);
  if (opts.signal?.aborted) ac.abort(opts.signal.reason);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const signal = ac.signal;
  // Every transfer in flight listens for the abort: that many listeners are expected, not a leak.
  setMaxListeners(4 * concurrency * (SMALL_COPY_FACTOR + 1) + 16, signal);
  const started: Promise<void>[] = [];
  let firstError: unknown;

  const copyBlob = (d: Descriptor) =>
    (d.size <= SMALL_COPY_BYTES ? smallLimiter : limiter).run(async () => {
      signal?.throwIfAborted();
      stats.blobs++;
      // A tiny blob the destination takes in one request is sent without asking first (when no
      // mount is in view): the question would cost the same round trip as the answer.
      const blind = isBlindPusher(dst) && !opts.mountFrom?.(d).length && dst.pushWithoutCheck(d);
      if (!blind && (await dst.exists(d, { signal }))) {
        stats.skipped++;
        emit(d, 'exists');
        return;
      }
      if (isMounter(dst)) {
        for (const from of opts.mountFrom?.(d) ?? []) {
          if (await dst.mount(d, from, { signal })) {
            stats.mounted++;
            emit(d, 'mounted');
            return;
          }
        }
      }
      emit(d, verb, 0);
      try {
        if (isResumablePusher(dst)) {
          const open: OpenAt = (offset) => (offset === 0 ? src.fetch(d, { signal }) : isRangeFetcher(src) ? src.fetchFrom(d, offset, { signal }) : noRange(d));
          await dst.pushFrom(d, open, {
            signal,
            checked: !blind,
            onProgress: (bytes, phase) => emit(d, phase === 'resuming' ? 'resuming' : phase === 'verifying' ? 'verifying' : verb, bytes),
          });
        } else {
          await dst.push(d, await src.fetch(d, { signal }), { signal });
        }
      } catch (e) {
        if (!signal.aborted) emit(d, 'failed', undefined, (e as Error).message);
        throw e;
      }
      stats.transferred++;
      stats.bytes += d.size;
      emit(d, 'done', d.size);
    });

  const copyNode = (d: Descriptor, depth = 0): Promise<void> => {
    let p = seen.get(d.digest);
    if (!p) {
      p = (isManifestLike(d.mediaType) ? copyManifest(d, depth) : copyBlob(d)).catch((e) => {
        if (firstError === undefined) {
          firstError = e;
          ac.abort(e);
        }
        throw e;
      });
      p.catch(() => undefined); // observed below, after everything settled
      seen.set(d.digest, p);
      started.push(p);
    }
    return p;
  };

  // depth: how many indexes lie above d (the root is at 0)
  const copyManifest = async (d: Descriptor, depth: number): Promise<void> => {
    if ((d !== root || !opts.revisitExistingRoot) && (await dst.exists(d, { signal }))) {
      // Skipped, but an index already there still counts towards the depth limit.
      if (isIndexMediaType(d.mediaType)) await indexLevels(src, d, MAX_INDEX_DEPTH - depth, { signal });
      stats.skipped++;
      emit(d, 'exists');
      return;
    }
    const bytes = fetched?.get(d.digest) ?? (await fetchManifestBytes(src, d, signal));
    const parsed = parseManifest(bytes, d.mediaType, d.digest);
    if (parsed.kind === 'index') {
      if (depth >= MAX_INDEX_DEPTH) {
        throw new PackError('INVALID_MANIFEST', `${d.digest}: indexes nested more than ${MAX_INDEX_DEPTH} deep`, { hint: 'nothing was stored; an index of indexes this deep is not a model' });
      }
      checkIndexEntries(parsed.index.manifests, d.digest);
      await Promise.all(childDescriptors(parsed).map((c) => copyNode(c, depth + 1)));
    } else {
      const children = childDescriptors(parsed);
      // One lease write for all of them (a 2,000-blob pull wrote 2,000), before any is fetched.
      if (isHolder(dst)) await dst.holdAll(children);
      await Promise.all(children.map((c) => copyNode(c, depth)));
    }
    if (d === root) return; // the root is written by the caller, with its tag
    await dst.push(d, bytes, { signal });
    stats.transferred++;
    emit(d, 'done', d.size);
  };

  try {
    await copyNode(root).catch(() => undefined);
    for (let n = 0; n < started.length; ) {
      const batch = started.slice(n);
      n = started.length;
      await Promise.allSettled(batch);
    }
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
  if (firstError !== undefined) throw firstError;
  return stats;
}

/** An index's entries must be manifests or indexes (a layer or config blob there is a broken index). */
export function checkIndexEntries(entries: Descriptor[], where: string): void {
  const bad = entries.find((e) => !isManifestLike(e.mediaType));
  if (bad) throw new PackError('INVALID_MANIFEST', `${where}: index entry ${bad.digest} is a ${bad.mediaType}, not a manifest or index`, { hint: 'nothing was stored' });
}

function noRange(d: Descriptor): never {
  throw new PackError('UNSUPPORTED', `${d.digest}: the source cannot be read from an offset`);
}

/** Reads a manifest or index (at most 4 MiB), verified against its descriptor. */
export async function fetchManifestBytes(src: ReadOnlyStorage, d: Descriptor, signal?: AbortSignal): Promise<Buffer> {
  if (d.size > MAX_MANIFEST_BYTES) throw new PackError('SIZE_EXCEEDS_LIMIT', `${d.digest}: manifest of ${d.size} bytes is over the ${MAX_MANIFEST_BYTES}-byte limit`);
  const stream = await src.fetch(d, { signal });
  const verify = new VerifyStream(d);
  const chunks: Buffer[] = [];
  stream.on('error', (e) => verify.destroy(e));
  for await (const c of stream.pipe(verify) as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

/** Configs larger than this are not read to match --variant (ModelPack configs are a few hundred bytes). */
const MAX_CONFIG_BYTES = 1024 * 1024;

export interface CopyOptions extends CopyGraphOptions {
  /** For an index: pick one manifest (pull into the store). Without it, the whole index is copied. */
  select?: Selection;
  /** Told which manifest of an index was picked (and why, when by memory). */
  onSelect?(choice: Choice): void;
  /** How messages name the source (default srcRef, which for a registry is only the tag). */
  sourceName?: string;
  /** Called with the root to copy (and its verified bytes) before anything is written; may refuse by throwing. */
  beforeCopy?(root: Descriptor, bytes: Buffer): Promise<void>;
}

export interface CopyResult {
  /** What was copied and tagged (the chosen manifest when an index was narrowed). */
  root: Descriptor;
  /** The descriptor the source reference resolved to. */
  resolved: Descriptor;
  stats: CopyStats;
}

/**
 * Resolves srcRef (pinning its digest), copies the graph, then writes the root under dstRef:
 * by PUT by tag where the destination can (a registry), else push + tag.
 */
export async function copy(src: ReadOnlyTarget, srcRef: string, dst: Target, dstRef: string, opts: CopyOptions = {}): Promise<CopyResult> {
  let resolved: Descriptor;
  let bytes: Buffer;
  if (isReferenceFetcher(src)) ({ desc: resolved, bytes } = await src.fetchReference(srcRef, { signal: opts.signal }));
  else {
    resolved = await src.resolve(srcRef, { signal: opts.signal });
    bytes = await fetchManifestBytes(src, resolved, opts.signal);
  }
  let root = resolved;
  if (opts.select) {
    const where = opts.sourceName ?? srcRef;
    const parsed = parseManifest(bytes, root.mediaType, where);
    if (parsed.kind === 'index') {
      const choice = await chooseNested(parsed.index, opts.select, where, (d) => fetchManifestBytes(src, d, opts.signal));
      opts.onSelect?.(choice);
      root = choice.descriptor;
      bytes = await fetchManifestBytes(src, root, opts.signal);
    } else if (opts.select.variant) {
      // One model, not an index: --variant must describe it (its config's quantization, ...), not be ignored.
      const m = parsed.manifest;
      const config = m.config.size <= MAX_CONFIG_BYTES ? await fetchManifestBytes(src, m.config, opts.signal).catch(() => undefined) : undefined;
      if (!manifestMatchesVariant(m, config, opts.select.variant)) {
        throw new PackError('USAGE', `${where}: is one model, not an index of variants, and is not ${opts.select.variant}`, { hint: 'drop --variant, or name an index' });
      }
    }
  }
  await opts.beforeCopy?.(root, bytes);
  const stats = await copyGraph(src, dst, root, opts, new Map([[root.digest, bytes]]));
  const plain: Descriptor = { mediaType: root.mediaType, digest: root.digest, size: root.size };
  if (root.artifactType) plain.artifactType = root.artifactType;
  if (isReferencePusher(dst)) {
    await dst.pushReference(plain, bytes, dstRef, { signal: opts.signal });
  } else {
    await dst.push(plain, bytes, { signal: opts.signal });
    await dst.tag(plain, dstRef, { signal: opts.signal });
  }
  return { root: plain, resolved, stats };
}
