/**
 * `mpk build`: Modelfile (or one generated from the directory) → files → one raw layer per file
 * in the store → ModelPack config → manifest → tag. Deterministic: the same files give the same
 * manifest digest on any machine (canonical JSON, normalised metadata, no time unless asked).
 */
import { stat, unlink } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { basename } from 'node:path';
import { PackError, fsError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { ModelFamily } from '../oci/media-types.js';
import { MAX_MANIFEST_BYTES } from '../oci/manifest.js';
import { canonicalJsonBytes } from '../oci/canonical-json.js';
import { parseReference } from '../oci/reference.js';
import type { Modelfile, ResolvedFile } from '../modelfile/types.js';
import { generateModelfile } from '../modelfile/generate.js';
import { resolvePatterns } from '../modelfile/resolve.js';
import type { LocalStore } from '../store/store.js';
import { DigestCache } from './digest-cache.js';
import { IngestPool } from './ingest-pool.js';
import { fileMetadata, layerDescriptor } from './layers.js';
import { mapBounded } from '../internal/map-bounded.js';
import { packModel, type Packed } from './pack.js';

export interface BuildProgress {
  filesDone: number;
  filesTotal: number;
  bytesDone: number;
  bytesTotal: number;
  /** Bytes that a cache hit or an existing blob spared from reading. */
  bytesSkipped: number;
}

export interface BuildOptions {
  /** The model directory. */
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
  /** Skip the digest cache and read every file. */
  noCache?: boolean;
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
}

interface Planned {
  file: ResolvedFile;
  stats: BigIntStats;
}

export async function buildModel(store: LocalStore, opts: BuildOptions): Promise<BuildResult> {
  const ref = parseReference(opts.reference);
  if (!ref.tag) throw new PackError('USAGE', `${opts.reference}: build needs a tag, not a digest`, { hint: 'use -t NAME:TAG' });
  const family = opts.family ?? 'cncf';
  let mf = opts.modelfile;
  if (!mf) {
    // Name the model after the reference, not the directory, so the digest does not depend on where the files sit.
    const gen = await generateModelfile(opts.contextDir, { name: basename(ref.repository) });
    gen.warnings.forEach((w) => opts.onWarning?.(w));
    mf = gen.modelfile;
  }
  const files = await resolvePatterns(mf, opts.contextDir);
  const planned = await Promise.all(files.map(async (file): Promise<Planned> => ({ file, stats: await statFile(file.absPath) })));
  const bytesTotal = planned.reduce((n, p) => n + Number(p.stats.size), 0);
  checkManifestSize(planned, family, opts);

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
    let digest = !opts.noCache ? cache.get(p.file.absPath, p.stats) : undefined;
    if (digest) await store.blobs.hold(digest);
    if (digest && (await store.blobs.size(digest)) === size) {
      progress.bytesSkipped += size;
    } else {
      const tmp = await store.blobs.tempPath();
      try {
        const r = await pool.ingest(p.file.absPath, tmp, (n) => {
          progress.bytesDone += n;
          report();
        });
        digest = r.digest;
        await store.blobs.commit(tmp, digest);
      } catch (e) {
        await unlink(tmp).catch(() => undefined);
        throw e;
      }
      filesRead++;
      cache.set(p.file.absPath, p.stats, digest);
    }
    progress.filesDone++;
    report();
    return layerDescriptor({ kind: p.file.kind, path: p.file.path, digest, size, metadata: fileMetadata(p.file.path, p.stats, !!opts.keepFileMetadata) }, family);
  };
  try {
    const layers = await mapBounded(planned, ingestOne, Math.max(2, (opts.concurrency ?? 4) * 2));
    await cache.save().catch((e) => opts.onWarning?.(`digest cache not saved: ${(e as Error).message}`));
    report.flush();
    const packed = await packModel(store, { layers, mediaTypes: family, ...modelMeta(mf), createdAt: opts.createdAt });
    await store.tag(packed.manifest, opts.reference);
    return { ...packed, reference: opts.reference, files: planned.length, bytes: bytesTotal, filesRead };
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

async function statFile(path: string): Promise<BigIntStats> {
  try {
    const s = await stat(path, { bigint: true });
    if (!s.isFile()) throw new PackError('IO', `${path}: not a regular file`, { hint: 'package regular files only' });
    return s;
  } catch (e) {
    throw fsError(e, path, 'cannot read');
  }
}

/**
 * The manifest's exact size is known before any file is read (digests have a fixed length), so a
 * model whose manifest registries would refuse fails at once, not after hashing every file.
 */
function checkManifestSize(planned: Planned[], family: ModelFamily, opts: BuildOptions): void {
  const placeholder = `sha256:${'0'.repeat(64)}`;
  let total = 600; // config descriptor, artifactType, annotations
  for (const p of planned) {
    const md = fileMetadata(p.file.path, p.stats, !!opts.keepFileMetadata);
    total += canonicalJsonBytes(layerDescriptor({ kind: p.file.kind, path: p.file.path, digest: placeholder, size: Number(p.stats.size), metadata: md }, family)).length + 1;
  }
  if (total > MAX_MANIFEST_BYTES) {
    throw new PackError(
      'SIZE_EXCEEDS_LIMIT',
      `${planned.length} files make a ${(total / 1048576).toFixed(1)} MiB manifest; registries accept at most 4 MiB`,
      { hint: 'archive the many small files into one (e.g. tar cf data.tar data/) and list the archive as DATASET' },
    );
  }
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
