/**
 * `mpk extract REF DIR`: restores a model's files under DIR, verifying every byte. All or
 * nothing: every file is staged beside its destination and renamed into place only once every
 * selected file has been verified (see staging.ts); a corrupt blob, a malicious path or Ctrl-C
 * leaves DIR as it was. `link` hard-links raw weight blobs (read-only, sharing the store's
 * inode) instead of copying them; where the store is on another file system it falls back to a
 * reflink or a copy.
 */
import { createReadStream, constants as fsc } from 'node:fs';
import { chmod, copyFile, link, open, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { pathMatcher } from '../internal/glob.js';
import { sha256File } from '../internal/file-digest.js';
import { PackError, fsError } from '../errors.js';
import { mapBounded } from '../internal/map-bounded.js';
import { modelView, type ModelFile } from '../modelpack/model-view.js';
import { VerifyStream } from '../oci/digest.js';
import { ANNOTATION_TITLE, filepathAnnotation, type LayerKind } from '../oci/media-types.js';
import type { LocalStore } from '../store/store.js';
import { readChunkFor } from '../store/blobs.js';
import { Staging } from './staging.js';
import { extractTarLayer } from './tar-layer.js';

export interface ExtractOptions {
  /** Only files of these kinds. */
  types?: LayerKind[];
  /** Only files whose path matches one of these globs (`**` allowed). */
  include?: string[];
  /** Hard-link raw weight blobs instead of copying them. */
  link?: boolean;
  /** Replace existing files that differ; default is to refuse. */
  overwrite?: boolean;
  /** Files copied at once (default 4). */
  concurrency?: number;
  onProgress?: (p: { bytesDone: number; bytesTotal: number }) => void;
  signal?: AbortSignal;
}

export interface ExtractedFile {
  path: string;
  kind: LayerKind | 'other';
  size: number;
  /** Digest of the layer it came from. */
  digest: string;
  /** True when hard-linked to the store's blob. */
  linked: boolean;
  /** True when an identical file was already there. */
  unchanged: boolean;
}

export interface ExtractResult {
  reference: string;
  digest: string;
  files: ExtractedFile[];
  bytes: number;
  warnings: string[];
}

export async function extractModel(store: LocalStore, reference: string, dir: string, opts: ExtractOptions = {}): Promise<ExtractResult> {
  const desc = await store.resolve(reference);
  const parsed = await store.readManifest(desc);
  if (parsed.kind !== 'manifest') {
    throw new PackError('UNSUPPORTED', `${reference}: is an index of several manifests`, { hint: 'extract one of them by digest (mpk inspect shows them)' });
  }
  const view = modelView(parsed.manifest); // refuses unsafe paths before anything is written
  if (view.format === 'oci-image') {
    throw new PackError('UNSUPPORTED', `${reference}: is a container image, not a model`, { hint: 'use a container runtime to run it' });
  }
  const warnings: string[] = [];
  const selected = select(view.files, opts, warnings);
  if (selected.length === 0) {
    throw new PackError('NOT_FOUND', `${reference}: no files match the selection`, { hint: 'check --type and --include (mpk inspect lists the files)' });
  }
  // Every blob must be there before anything is written.
  for (const f of selected) {
    const size = await store.blobs.size(f.layer.digest);
    if (size === undefined) throw new PackError('NOT_FOUND', `${f.layer.digest} (${f.path}): blob missing from the store`, { hint: 'pull or build the model again' });
    if (size !== f.layer.size) throw corrupt(f, `has ${size} bytes, the manifest says ${f.layer.size}`);
  }

  const staging = await Staging.open(dir);
  const bytesTotal = selected.reduce((n, f) => n + f.layer.size, 0);
  let bytesDone = 0;
  const progress = (n: number) => {
    bytesDone += n;
    opts.onProgress?.({ bytesDone, bytesTotal });
  };
  let linkFallback = false;
  const one = async (f: ModelFile): Promise<ExtractedFile[]> => {
    opts.signal?.throwIfAborted();
    const blob = store.blobs.path(f.layer.digest);
    const base = { kind: f.kind, digest: f.layer.digest, linked: false, unchanged: false };
    if (f.encoding !== 'raw' && f.encoding !== 'other') {
      const entries = await extractTarLayer({
        blob: createReadStream(blob, { highWaterMark: readChunkFor(f.layer.size) }).on('data', (c) => progress(c.length)),
        layer: f.layer,
        encoding: f.encoding,
        staging,
        want: pathMatcher(opts.include, true),
        keepMtime: true,
        overwrite: !!opts.overwrite,
        onWarning: (w) => warnings.push(w),
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      return entries.map((e) => ({ ...base, path: e.path, size: e.size, unchanged: e.unchanged }));
    }
    const dest = staging.dest(f.path);
    const existing = await staging.existing(f.path, !!opts.overwrite);
    if (existing && existing.size === f.layer.size) {
      const b = await stat(blob);
      const isBlob = existing.ino === b.ino && existing.dev === b.dev;
      if (isBlob || (f.layer.digest.startsWith('sha256:') && (await sha256File(dest)) === f.layer.digest)) {
        if (isBlob) await store.blobs.verify(f.layer); // the link is the blob: check it
        progress(f.layer.size);
        return [{ ...base, path: f.path, size: f.layer.size, unchanged: true, linked: isBlob }];
      }
    }
    if (existing && !opts.overwrite) {
      throw new PackError('ALREADY_EXISTS', `${dest}: exists and differs from the model's file`, { hint: 'add --overwrite to replace it, or extract into an empty directory' });
    }
    const tmp = await staging.stage(f.path, f.layer.digest);
    if (opts.link && f.kind === 'weight' && f.encoding === 'raw') {
      await store.blobs.verify(f.layer); // a link shares bytes: check them all the same
      try {
        await link(blob, tmp);
        progress(f.layer.size);
        return [{ ...base, path: f.path, size: f.layer.size, linked: true }];
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EMLINK' && code !== 'ENOTSUP') throw fsError(e, dest, 'cannot link');
        linkFallback = true;
        await copyFile(blob, tmp, fsc.COPYFILE_FICLONE | fsc.COPYFILE_EXCL); // a reflink where the file system has them
        await chmod(tmp, fileMode(f));
        progress(f.layer.size);
        return [{ ...base, path: f.path, size: f.layer.size }];
      }
    }
    const mtime = f.metadata?.mtime ? Date.parse(f.metadata.mtime) : NaN;
    await copyVerified(blob, tmp, f, progress, {
      mode: fileMode(f),
      ...(mtime > 0 ? { mtime: new Date(mtime) } : {}), // normalised metadata (epoch 0) keeps "now"
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    return [{ ...base, path: f.path, size: f.layer.size }];
  };

  try {
    const files = (await mapBounded(selected, one, opts.concurrency ?? 4)).flat();
    opts.signal?.throwIfAborted();
    await staging.commit();
    // Linking (and renaming the link into place) moved the blobs' ctime: they stay verified.
    for (const f of files) if (f.linked && !f.unchanged) await store.blobs.noteLinked({ digest: f.digest, size: f.size });
    if (linkFallback) warnings.push('the store is on another file system: weights were copied (reflinked where supported), not hard-linked');
    return { reference, digest: desc.digest, files, bytes: files.reduce((n, f) => n + f.size, 0), warnings };
  } catch (e) {
    await staging.abort();
    if (e instanceof PackError && (e.code === 'DIGEST_MISMATCH' || e.code === 'SIZE_MISMATCH')) {
      throw new PackError('CORRUPT', `stored blob is corrupt: ${e.message}`, { cause: e, hint: 'run mpk verify; remove the model, prune, then pull or build it again' });
    }
    throw e;
  }
}

function select(files: ModelFile[], opts: ExtractOptions, warnings: string[]): ModelFile[] {
  const include = pathMatcher(opts.include, true);
  const out: ModelFile[] = [];
  for (const f of files) {
    if (f.encoding === 'other' && !namesFile(f)) {
      warnings.push(`skipped layer ${f.layer.digest} (${f.layer.mediaType}): it names no file`);
      continue;
    }
    if (opts.types?.length && (f.kind === 'other' || !opts.types.includes(f.kind))) continue;
    // A tar layer is kept when any entry may match: its entries are filtered as they stream.
    if ((f.encoding === 'raw' || f.encoding === 'other') && !include(f.path)) continue;
    out.push(f);
  }
  return out;
}

/** True when a layer's path came from an annotation, not from its digest (see modelView). */
function namesFile(f: ModelFile): boolean {
  const a = f.layer.annotations ?? {};
  return [ANNOTATION_TITLE, filepathAnnotation('cncf'), filepathAnnotation('cnai')].some((k) => a[k] !== undefined);
}

/** Mode from the file metadata (permission bits only, never setuid), else 0644. */
function fileMode(f: ModelFile): number {
  const m = f.metadata?.mode;
  return m === undefined || m === 0 ? 0o644 : m & 0o777;
}

function corrupt(f: ModelFile, why: string): PackError {
  return new PackError('CORRUPT', `${f.layer.digest} (${f.path}): stored blob ${why}`, { hint: 'run mpk verify; remove the model, prune, then pull or build it again' });
}

/** Copies a blob into a new temp file (created exclusively), verifying it; mode and mtime set on the handle. */
async function copyVerified(blob: string, tmp: string, f: ModelFile, progress: (n: number) => void, o: { mode: number; mtime?: Date; signal?: AbortSignal }): Promise<void> {
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await pipeline(
      createReadStream(blob, { highWaterMark: readChunkFor(f.layer.size) }),
      new VerifyStream(f.layer),
      async (src: AsyncIterable<Buffer>) => {
        for await (const chunk of src) {
          await fh.write(chunk);
          progress(chunk.length);
        }
      },
      ...(o.signal ? [{ signal: o.signal }] : []),
    );
    await fh.chmod(o.mode);
    if (o.mtime) await fh.utimes(o.mtime, o.mtime);
  } finally {
    await fh.close();
  }
}
