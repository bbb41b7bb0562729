/**
 * Metadata before bytes: a model in a registry read without its weights.
 * - `inspectRemote()`: the manifest (by tag, one GET), the config blob and mpk's GGUF metadata
 *   annotation, shown by the same code as a local `mpk inspect` (modelpack/inspect.ts reads from a
 *   ModelSource); for an index, every variant's manifest and config (at most MAX_VARIANTS).
 * - `planPull()` (`mpk pull --dry-run`): the walk a pull would make, manifests only, each blob
 *   marked `fetch` or `present` against the store; nothing is written.
 * Every byte of a response body is counted (`fetchedBytes`); a blob over 1 MiB is never asked for.
 */
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { ReadOnlyStorage } from '../content/storage.js';
import { planReferrers } from '../graph/copy-referrers.js';
import { join } from 'node:path';
import { PackError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { parseDigest, VerifyStream } from '../oci/digest.js';
import { childDescriptors, isManifestLike, parseManifest, type ParsedManifest } from '../oci/manifest.js';
import { ANNOTATION_TITLE } from '../oci/media-types.js';
import { formatReference, parseReference, type Reference } from '../oci/reference.js';
import { describeModel, type ModelDetails, type ModelSource } from '../modelpack/inspect.js';
import { modelView } from '../modelpack/model-view.js';
import { variantsOf, type VariantInfo } from '../modelpack/variant-index.js';
import { chooseNested, type Selection } from '../graph/select.js';
import { getManifest } from '../registry/remote-manifests.js';
import { RemoteRepository } from '../registry/repository.js';
import { mapBounded } from '../internal/map-bounded.js';
import type { LocalStore } from '../store/store.js';
import { makeClient, pullDestination, type TransferOptions } from './transfer.js';

/** Variants of an index read by inspect; the rest are counted, not fetched. */
export const MAX_VARIANTS = 64;
/** Blobs inspect may read (configs, a top-level config.json): never more than this, so never a weight. */
export const MAX_METADATA_BLOB_BYTES = 1024 * 1024;
/** Manifests fetched at once for the variants of an index. */
const VARIANT_CONCURRENCY = 8;
/** Index inside index: deeper than this is refused (a pull would never get there). */
const MAX_DEPTH = 8;

/** A registry repository read for metadata only: every body byte counted, the root's bytes kept. */
class MetadataSource implements ModelSource {
  fetchedBytes = 0;
  private readonly manifests = new Map<string, Buffer>();
  constructor(
    readonly repo: RemoteRepository,
    private readonly signal?: AbortSignal,
  ) {}

  /** The manifest `reference` (tag or digest) names, in one GET. */
  async root(reference: string): Promise<{ desc: Descriptor; parsed: ParsedManifest }> {
    const { desc, bytes } = await getManifest(this.repo.ctx, reference, this.signal);
    this.fetchedBytes += bytes.length;
    this.manifests.set(desc.digest, bytes);
    return { desc, parsed: parseManifest(bytes, desc.mediaType, desc.digest) };
  }

  async readManifest(desc: Descriptor): Promise<ParsedManifest> {
    return parseManifest(await this.manifestBytes(desc), desc.mediaType, desc.digest);
  }

  async manifestBytes(desc: Descriptor): Promise<Buffer> {
    let bytes = this.manifests.get(desc.digest);
    if (!bytes) {
      bytes = (await this.repo.fetchManifest(desc, { signal: this.signal })).bytes;
      this.fetchedBytes += bytes.length;
      this.manifests.set(desc.digest, bytes);
    }
    return bytes;
  }

  /** Manifests only, counted (what planReferrers reads). */
  asStorage(): ReadOnlyStorage {
    return {
      fetch: async (d) => {
        if (!isManifestLike(d.mediaType)) throw new PackError('UNSUPPORTED', `${d.digest}: a dry run reads manifests only`);
        return Readable.from([await this.manifestBytes(d)]);
      },
      exists: async () => false,
    };
  }

  async readBlob(desc: Descriptor, maxBytes: number): Promise<Buffer | undefined> {
    if (desc.size > Math.min(maxBytes, MAX_METADATA_BLOB_BYTES)) return undefined;
    const stream = await this.repo.fetch(desc, { signal: this.signal });
    const verify = new VerifyStream(desc);
    stream.on('error', (e) => verify.destroy(e));
    const chunks: Buffer[] = [];
    for await (const c of stream.pipe(verify) as AsyncIterable<Buffer>) {
      this.fetchedBytes += c.length;
      chunks.push(c);
    }
    return Buffer.concat(chunks);
  }
}

function remoteRef(reference: string): Reference & { registry: string } {
  const ref = parseReference(reference);
  if (!ref.registry) {
    throw new PackError('USAGE', `${reference}: no registry host in the reference`, { hint: 'write HOST[:PORT]/NAME:TAG, e.g. localhost:5000/models/llama:v1' });
  }
  return ref as Reference & { registry: string };
}

async function withSource<T>(reference: string, opts: TransferOptions, fn: (src: MetadataSource, ref: Reference, part: string) => Promise<T>): Promise<T> {
  const ref = remoteRef(reference);
  const client = makeClient(opts);
  try {
    const src = new MetadataSource(RemoteRepository.fromReference(client, ref), opts.signal);
    return await fn(src, ref, ref.digest ?? ref.tag ?? 'latest');
  } finally {
    client.close();
  }
}

/** One variant of an index: its details plus what the index says of it (no manifest when unreadable). */
export type VariantDetails = Omit<ModelDetails, 'manifest'> & {
  manifest?: ModelDetails['manifest'];
  annotations?: Record<string, string>;
  platform?: string;
  /** Why it could not be read (the others are still shown). */
  error?: string;
};

export interface RemoteDetails extends ModelDetails {
  /** Body bytes read from the registry (manifests and configs). */
  fetchedBytes: number;
  /** What pulling it all would move: a model's size; for an index, it and every variant's blobs, each once. */
  modelBytes: number;
  /** An index: what each entry says of its variant and whether the store has it (as a local inspect gives). */
  variants?: VariantInfo[];
  /** An index: each variant read from the registry (manifest, config, GGUF metadata), in index order. */
  variantDetails?: VariantDetails[];
  /** Variants past MAX_VARIANTS, not read. */
  variantsNotRead?: number;
}

/**
 * `mpk inspect HOST/NAME:TAG`: what a local inspect shows, read from the registry with no weight
 * fetched; for an index, each variant (at most MAX_VARIANTS) too, and (given the store) the
 * index entries as a local inspect lists them, marked stored or not.
 */
export async function inspectRemote(reference: string, opts: TransferOptions = {}, store?: LocalStore): Promise<RemoteDetails> {
  return withSource(reference, opts, async (src, ref) => {
    const { desc, parsed } = await src.root(ref.digest ?? ref.tag ?? 'latest');
    const shown = formatReference(ref);
    const details = await describeModel(src, shown, desc, true);
    if (parsed.kind !== 'index') return { ...details, fetchedBytes: src.fetchedBytes, modelBytes: details.size };
    const entries = parsed.index.manifests;
    const read = entries.slice(0, MAX_VARIANTS);
    const name = `${ref.registry}/${ref.repository}`;
    const variants = await mapBounded(
      read,
      async (d): Promise<VariantDetails> => {
        const extra: Pick<VariantDetails, 'annotations' | 'platform'> = {};
        if (d.annotations) extra.annotations = d.annotations;
        if (d.platform) extra.platform = [d.platform.os, d.platform.architecture, d.platform.variant].filter(Boolean).join('/');
        const at = `${name}@${d.digest}`;
        if (!isManifestLike(d.mediaType)) {
          return { reference: at, digest: d.digest, size: d.size, kind: 'other', files: [], ...extra, error: `not a manifest (${d.mediaType})` };
        }
        try {
          return { ...(await describeModel(src, at, d, true)), ...extra };
        } catch (e) {
          opts.signal?.throwIfAborted();
          return { reference: at, digest: d.digest, size: d.size, kind: 'unreadable', files: [], ...extra, error: (e as Error).message };
        }
      },
      VARIANT_CONCURRENCY,
    );
    const blobs = new Map<string, number>([[desc.digest, desc.size]]);
    for (const [i, v] of variants.entries()) {
      blobs.set(read[i]!.digest, read[i]!.size);
      const m = v.manifest && 'layers' in v.manifest ? v.manifest : undefined;
      for (const b of m ? [m.config, ...m.layers] : []) blobs.set(b.digest, b.size);
    }
    const modelBytes = [...blobs.values()].reduce((a, b) => a + b, 0);
    // As a local inspect of the index says once every variant is stored: each variant whole.
    const size = desc.size + variants.reduce((n, v, i) => n + (v.manifest ? v.size : read[i]!.size), 0) + entries.slice(read.length).reduce((n, e) => n + e.size, 0);
    const out: RemoteDetails = { ...details, size, variantDetails: variants, fetchedBytes: src.fetchedBytes, modelBytes };
    if (store) out.variants = await variantsOf(store, parsed.index);
    if (entries.length > read.length) out.variantsNotRead = entries.length - read.length;
    return out;
  });
}

export type PlanAction = 'fetch' | 'present';

export interface PlanEntry {
  digest: string;
  mediaType: string;
  size: number;
  /** `manifest`, `index`, `config`, or the layer's kind (weight, config, doc, …). */
  kind: string;
  /** The file path a layer extracts to; absent for manifests and configs. */
  path?: string;
  action: PlanAction;
  /** A stored file that is not the blob any more (pull rewrites it). */
  changed?: true;
  /** Bytes of an interrupted download kept in the store: a pull resumes after them. */
  partialBytes?: number;
}

export interface PullPlan {
  source: string;
  /** The name pull would store it under. */
  destination: string;
  /** The manifest (or index) the reference resolved to. */
  resolved: Descriptor;
  /** What would be stored and tagged (the chosen variant of an index). */
  root: Descriptor;
  /** Whether the destination name already points at `root` (`same`), at something else, or at nothing. */
  tag: 'same' | 'other' | 'none';
  entries: PlanEntry[];
  /** With `--referrers`: the referrers that would go along (their manifests are entries of kind `referrer`). */
  referrers?: number;
  totals: { blobs: number; fetch: number; fetchBytes: number; present: number; presentBytes: number };
  /** Body bytes the plan read from the registry. */
  fetchedBytes: number;
}

/**
 * `mpk pull --dry-run`: resolves and selects as pull does, reads the manifests (nothing else)
 * and says, per blob, whether the store has it. Reads the store; writes nothing.
 */
export async function planPull(store: LocalStore, reference: string, opts: TransferOptions = {}): Promise<PullPlan> {
  return withSource(reference, opts, async (src, ref, part) => {
    const { desc: resolved, parsed } = await src.root(part);
    let root = resolved;
    if (parsed.kind === 'index') root = (await chooseNested(parsed.index, opts.select ?? ({} as Selection), reference, (d) => src.manifestBytes(d))).descriptor;
    const entries: PlanEntry[] = [];
    const seen = new Set<string>();
    const add = async (d: Descriptor, kind: string, path?: string) => {
      if (seen.has(d.digest)) return;
      seen.add(d.digest);
      const state = await store.blobs.state(d);
      const e: PlanEntry = { digest: d.digest, mediaType: d.mediaType, size: d.size, kind, action: state === 'present' ? 'present' : 'fetch' };
      if (path) e.path = path;
      if (state === 'changed') e.changed = true;
      if (e.action === 'fetch') {
        const partial = await partialBytes(store, d.digest);
        if (partial > 0) e.partialBytes = partial;
      }
      entries.push(e);
    };
    const walk = async (d: Descriptor, depth: number, kind?: string): Promise<void> => {
      if (depth > MAX_DEPTH) throw new PackError('INVALID_MANIFEST', `${reference}: indexes nested deeper than ${MAX_DEPTH} levels`);
      const p = await src.readManifest(d);
      await add(d, kind ?? p.kind);
      if (p.kind === 'index') {
        for (const c of p.index.manifests) if (isManifestLike(c.mediaType)) await walk(c, depth + 1);
        return;
      }
      const m = p.manifest;
      let paths: Map<Descriptor, string> | undefined;
      let kinds: Map<Descriptor, string> | undefined;
      try {
        const view = modelView(m);
        paths = new Map(view.files.map((f) => [f.layer, f.path]));
        kinds = new Map(view.files.map((f) => [f.layer, f.kind]));
      } catch {
        // an unsafe path: pull would store the blobs; extract refuses them. Titles are shown as they are.
      }
      await add(m.config, 'config');
      for (const l of m.layers) await add(l, kinds?.get(l) ?? 'layer', paths?.get(l) ?? l.annotations?.[ANNOTATION_TITLE]);
      for (const c of childDescriptors(p)) if (c !== m.config && !m.layers.includes(c) && c !== m.subject) await add(c, 'blob');
    };
    await walk(root, 0);
    let referrers: number | undefined;
    if (opts.referrers) {
      const planned = await planReferrers(src.asStorage(), src.repo, root, await src.manifestBytes(root), opts.signal ? { signal: opts.signal } : {});
      for (const r of planned) await walk(r.desc, 0, 'referrer');
      referrers = planned.length;
    }
    const destination = pullDestination(reference);
    const tagged = await store.resolve(destination).catch(() => undefined);
    const totals = { blobs: entries.length, fetch: 0, fetchBytes: 0, present: 0, presentBytes: 0 };
    for (const e of entries) {
      if (e.action === 'fetch') [totals.fetch, totals.fetchBytes] = [totals.fetch + 1, totals.fetchBytes + e.size];
      else [totals.present, totals.presentBytes] = [totals.present + 1, totals.presentBytes + e.size];
    }
    return {
      source: formatReference(ref),
      destination,
      resolved,
      root: { mediaType: root.mediaType, digest: root.digest, size: root.size },
      tag: !tagged ? 'none' : tagged.digest === root.digest ? 'same' : 'other',
      entries,
      ...(referrers === undefined ? {} : { referrers }),
      totals,
      fetchedBytes: src.fetchedBytes,
    };
  });
}

/** Bytes kept by an interrupted pull of this blob (`ingest/partial/<alg>-<hex>`), 0 if none. */
async function partialBytes(store: LocalStore, digest: string): Promise<number> {
  const { algorithm, hex } = parseDigest(digest);
  const s = await stat(join(store.blobs.ingestDir, 'partial', `${algorithm}-${hex}`)).catch(() => undefined);
  return s?.isFile() ? s.size : 0;
}
