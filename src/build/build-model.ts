/**
 * `mpk build`: Modelfile (or one generated from the directory or file) → files and what their
 * weights' headers say (prepare.ts) → one raw layer per file in the store → ModelPack config →
 * manifest → tag. Deterministic: the same files give the same
 * manifest digest on any machine (canonical JSON, normalised metadata, no time unless asked).
 */
import { unlink } from 'node:fs/promises';
import { basename } from 'node:path';
import { PackError } from '../errors.js';
import type { WeightsDescription } from '../formats/inspect-weights.js';
import type { Descriptor } from '../oci/descriptor.js';
import { canonicalJsonBytes } from '../oci/canonical-json.js';
import { LAYER_KINDS, filepathAnnotation, parseLayerMediaType, type LayerKind, type ModelFamily } from '../oci/media-types.js';
import { parseReference } from '../oci/reference.js';
import type { Modelfile } from '../modelfile/types.js';
import type { LocalStore } from '../store/store.js';
import { DigestCache } from './digest-cache.js';
import { prepareBuild } from './prepare.js';
import { WeightsCache } from './weights-cache.js';
import { IngestPool, fileChangedError, type BatchItem } from './ingest-pool.js';
import { fileMetadata, layerDescriptor } from './layers.js';
import { mapBounded } from '../internal/map-bounded.js';
import { packModel, type Packed } from './pack.js';
import { SMALL_FILE, groupMetadata, planLayers, ungroupedWarning, writeTarGroup, type PlanFile, type TarGroup } from './tar-group.js';

export interface BuildProgress {
  filesDone: number;
  filesTotal: number;
  bytesDone: number;
  bytesTotal: number;
  /** Bytes that a cache hit or an existing blob spared from reading. */
  bytesSkipped: number;
}

export interface BuildOptions {
  /** The model directory, or one model file (packaged alone unless a Modelfile is given). */
  contextDir: string;
  /** Target reference (`name:tag`). */
  reference: string;
  /** Parsed Modelfile; when absent one is generated from the directory in memory. */
  modelfile?: Modelfile;
  /** Write legacy `vnd.cnai` media types (Harbor's model view keys on them). Default cncf. */
  family?: ModelFamily;
  /** Keep real mode, owner and mtime in file metadata (not reproducible). */
  keepFileMetadata?: boolean;
  /** RFC 3339 creation time for config and manifest; none by default. */
  createdAt?: string;
  /** Files hashed at once; default: the number of CPUs. */
  concurrency?: number;
  /** Skip the digest and weights caches: read every file and every weight header. */
  noCache?: boolean;
  /** Pack files under 1 MiB into one tar layer per directory and kind (see tar-group.ts). */
  groupSmallFiles?: boolean;
  onProgress?: (p: BuildProgress) => void;
  onWarning?: (message: string) => void;
  signal?: AbortSignal;
}

export interface BuildResult extends Packed {
  reference: string;
  files: number;
  bytes: number;
  /** Files read (not served by the cache or an existing blob). */
  filesRead: number;
  /** Weight files whose headers were read (0 when the weights cache knew them all). */
  headersRead: number;
  /** What the weights' headers say; undefined when nothing is a weight. */
  weights?: WeightsDescription;
}

/** A file to package with its stat, taken once: sizes in the manifest plan and the cache key. */
type Planned = PlanFile;

export async function buildModel(store: LocalStore, opts: BuildOptions): Promise<BuildResult> {
  const ref = parseReference(opts.reference);
  if (!ref.tag) throw new PackError('USAGE', `${opts.reference}: build needs a tag, not a digest`, { hint: 'use -t NAME:TAG' });
  const family = opts.family ?? 'cncf';
  const weightsCache = await WeightsCache.load(store.root);
  const prepared = await prepareBuild({
    contextDir: opts.contextDir,
    ...(opts.modelfile ? { modelfile: opts.modelfile } : {}),
    // Name the model after the reference, not the directory, so the digest does not depend on where the files sit.
    name: basename(ref.repository),
    describeWeights: weightsCache.describer(!opts.noCache),
    ...(opts.onWarning ? { onWarning: opts.onWarning } : {}),
  });
  await weightsCache.save().catch((e) => opts.onWarning?.(`weights cache not saved: ${(e as Error).message}`));
  const { modelfile: mf, files: planned, weights, annotations } = prepared;
  const bytesTotal = planned.reduce((n, p) => n + Number(p.stats.size), 0);
  const plan = planLayers(planned, family, !!opts.keepFileMetadata, !!opts.groupSmallFiles, canonicalJsonBytes(annotations).length);
  if (plan.groups.length && !opts.groupSmallFiles) {
    const n = plan.groups.reduce((a, g) => a + g.files.length, 0);
    opts.onWarning?.(`${n} small files in ${plan.groups.length} directories packed as tar layers: one layer per file would make a manifest over the 4 MiB registries accept`);
  }
  const ungrouped = ungroupedWarning(plan);
  if (ungrouped) opts.onWarning?.(ungrouped);

  const progress: BuildProgress = { filesDone: 0, filesTotal: planned.length, bytesDone: 0, bytesTotal, bytesSkipped: 0 };
  const report = throttle(() => opts.onProgress?.({ ...progress }), 100);
  const cache = await DigestCache.load(store.root);
  const pool = new IngestPool(opts.concurrency);
  // On Ctrl-C stop the workers at once (even mid-file); their temp files are removed below.
  const onAbort = () => void pool.close();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  let filesRead = 0;
  const ingestOne = async (p: Planned): Promise<Descriptor> => {
    opts.signal?.throwIfAborted();
    const size = Number(p.stats.size);
    let digest = !opts.noCache ? cache.get(p.absPath, p.stats) : undefined;
    if (digest) await store.blobs.hold(digest);
    // The blob must still be the file stored from these bytes: one changed since (edited through
    // an `extract --link`) is read from the source again and replaced.
    if (digest && (await store.blobs.exists({ digest, size }))) {
      progress.bytesSkipped += size;
    } else {
      const tmp = await store.blobs.tempPath();
      try {
        const r = await pool.ingest(p.absPath, tmp, (n) => {
          progress.bytesDone += n;
          report();
        });
        if (r.size !== size) throw fileChangedError(p.absPath);
        digest = r.digest;
        await store.blobs.commit(tmp, digest);
      } catch (e) {
        await unlink(tmp).catch(() => undefined);
        throw e;
      }
      filesRead++;
      cache.set(p.absPath, p.stats, digest);
    }
    progress.filesDone++;
    report();
    return layerDescriptor({ kind: p.kind, path: p.path, digest, size, metadata: fileMetadata(p.path, p.stats, !!opts.keepFileMetadata) }, family);
  };
  const ingestGroup = async (g: TarGroup): Promise<Descriptor> => {
    const tmp = await store.blobs.tempPath();
    try {
      const r = await writeTarGroup(g, tmp, (n) => {
        progress.bytesDone += n;
        progress.filesDone++;
        report();
      }, opts.signal);
      await store.blobs.commit(tmp, r.digest);
      filesRead += g.files.length;
      return layerDescriptor({ kind: g.kind, path: g.dir, digest: r.digest, size: r.size, metadata: groupMetadata(g.dir), encoding: 'tar' }, family);
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
  };
  const target = await store.blobs.writerPaths();
  // What the store verified: a worker trusts a cached digest's blob only while its file has the
  // identity recorded here (one stat, on the worker), else it reads the source file again.
  const verified = (await store.blobs.verified?.snapshot()) ?? new Map<string, string>();
  const ingestBatch = async (batch: Planned[]): Promise<Descriptor[]> => {
    opts.signal?.throwIfAborted();
    const items = batch.map((p): BatchItem => {
      const cached = opts.noCache ? undefined : cache.get(p.absPath, p.stats);
      const cachedId = cached && verified.get(cached);
      return { src: p.absPath, size: Number(p.stats.size), ...(cached && cachedId ? { cached, cachedId } : {}) };
    });
    const results = await pool.ingestBatch(items, target);
    return results.map((r, i) => {
      const p = batch[i]!;
      if (r.size !== Number(p.stats.size)) throw fileChangedError(p.absPath);
      if (r.read) {
        filesRead++;
        progress.bytesDone += r.size;
        cache.set(p.absPath, p.stats, r.digest);
      } else {
        progress.bytesSkipped += r.size;
      }
      progress.filesDone++;
      report();
      return layerDescriptor({ kind: p.kind, path: p.path, digest: r.digest, size: r.size, metadata: fileMetadata(p.path, p.stats, !!opts.keepFileMetadata) }, family);
    });
  };
  const work: Array<Planned | Planned[] | TarGroup> = [...plan.groups, ...batches(plan.singles)];
  const ingest = async (w: Planned | Planned[] | TarGroup): Promise<Descriptor[]> =>
    Array.isArray(w) ? ingestBatch(w) : 'dir' in w ? [await ingestGroup(w)] : [await ingestOne(w)];
  try {
    const layers = sortLayers((await mapBounded(work, ingest, Math.max(2, (opts.concurrency ?? 4) * 2))).flat(), family);
    await cache.save().catch((e) => opts.onWarning?.(`digest cache not saved: ${(e as Error).message}`));
    report.flush();
    const packed = await packModel(store, { layers, mediaTypes: family, ...modelMeta(mf), createdAt: opts.createdAt, annotations });
    await store.tag(packed.manifest, opts.reference);
    const result: BuildResult = { ...packed, reference: opts.reference, files: planned.length, bytes: bytesTotal, filesRead, headersRead: weights?.headersRead ?? 0 };
    if (weights) result.weights = weights;
    return result;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    await pool.close();
  }
}

function modelMeta(mf: Modelfile) {
  return {
    name: mf.name,
    family: mf.family,
    arch: mf.arch,
    format: mf.format,
    paramSize: mf.paramSize,
    precision: mf.precision,
    quantization: mf.quantization,
  };
}

/** Files under 1 MiB go to the workers in batches (up to 256 files, 16 MiB); larger ones one by one, largest first. */
function batches(planned: Planned[]): Array<Planned | Planned[]> {
  const large = planned.filter((p) => p.stats.size >= SMALL_FILE).sort((a, b) => Number(b.stats.size - a.stats.size));
  const out: Array<Planned | Planned[]> = [...large];
  let cur: Planned[] = [];
  let bytes = 0;
  for (const p of planned) {
    if (p.stats.size >= SMALL_FILE) continue;
    if (cur.length >= 256 || bytes + Number(p.stats.size) > 16 * 1024 * 1024) {
      out.push(cur);
      [cur, bytes] = [[], 0];
    }
    cur.push(p);
    bytes += Number(p.stats.size);
  }
  if (cur.length) out.push(cur);
  return out;
}

/** Layers by kind (config, weight, code, doc, dataset) then by path, tar groups among the files. */
function sortLayers(layers: Descriptor[], family: ModelFamily): Descriptor[] {
  const key = (d: Descriptor): [number, string] => {
    const kind = parseLayerMediaType(d.mediaType)?.kind ?? 'dataset';
    return [LAYER_KINDS.indexOf(kind as LayerKind), d.annotations?.[filepathAnnotation(family)] ?? ''];
  };
  return layers
    .map((d) => ({ d, k: key(d) }))
    .sort((a, b) => a.k[0] - b.k[0] || (a.k[1] < b.k[1] ? -1 : a.k[1] > b.k[1] ? 1 : 0))
    .map((x) => x.d);
}

function throttle(fn: () => void, ms: number): (() => void) & { flush(): void } {
  let last = 0;
  const f = (() => {
    const now = Date.now();
    if (now - last >= ms) {
      last = now;
      fn();
    }
  }) as (() => void) & { flush(): void };
  f.flush = fn;
  return f;
}
