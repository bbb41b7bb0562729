/**
 * What mpk does when one layer per file would make a manifest larger than the 4 MiB registries
 * accept (10,000s of small files): it packs the small files (< 1 MiB) of the directories that
 * hold the most of them into one deterministic `.tar` layer per directory and kind (the ModelPack
 * tar encoding, which modctl and mpk extract), largest savings first, only until the manifest
 * fits (or, with `groupAll`, every such directory: one blob per directory instead of one per
 * file is much faster to store and push). Weights and other large files keep their own raw layers. Tar headers are normalised
 * (mode 0644/0755, uid/gid 0, no user names, mtime 0), entries sorted by path, so the digest
 * depends only on the files' paths and bytes.
 */
import { closeSync, openSync, readSync, type BigIntStats } from 'node:fs';
import { open } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import { pack as tarPack } from 'tar-stream';
import { PackError, fsError } from '../errors.js';
import { canonicalJsonBytes } from '../oci/canonical-json.js';
import { MAX_MANIFEST_BYTES } from '../oci/manifest.js';
import type { LayerKind, ModelFamily } from '../oci/media-types.js';
import type { FileMetadata } from '../modelpack/model-view.js';
import { fileChangedError } from './ingest-pool.js';
import { EPOCH, fileMetadata, layerDescriptor, normalisedMode } from './layers.js';

/** Files below this size may be grouped. */
export const SMALL_FILE = 1024 * 1024;
const PLACEHOLDER = `sha256:${'0'.repeat(64)}`;
/** Config descriptor, artifactType, schemaVersion, created annotation, JSON punctuation. */
const MANIFEST_OVERHEAD = 1024;

export interface PlanFile {
  kind: LayerKind;
  path: string;
  absPath: string;
  stats: BigIntStats;
}

export interface TarGroup {
  kind: LayerKind;
  /** The directory whose small files the layer holds (its filepath annotation). */
  dir: string;
  files: PlanFile[];
}

export interface LayerPlan {
  singles: PlanFile[];
  groups: TarGroup[];
  manifestBytes: number;
  /**
   * With `groupAll`: the small files that still get a layer each, by reason: at the top of the
   * model (a tar layer is named by its folder, and the top has none), the only small file of its
   * kind in its folder (a tar of one file saves nothing), or a weight (weights stay raw).
   */
  ungrouped?: { top: PlanFile[]; alone: PlanFile[]; weights: PlanFile[] };
}

function singleBytes(f: PlanFile, family: ModelFamily, keep: boolean): number {
  const d = layerDescriptor({ kind: f.kind, path: f.path, digest: PLACEHOLDER, size: Number(f.stats.size), metadata: fileMetadata(f.path, f.stats, keep) }, family);
  return canonicalJsonBytes(d).length + 1;
}

export function groupMetadata(dir: string): FileMetadata {
  return { name: basename(dir), mode: 0o755, uid: 0, gid: 0, size: 0, mtime: EPOCH, typeflag: 53 }; // '5': a directory
}

function groupBytes(g: TarGroup, family: ModelFamily): number {
  const d = layerDescriptor({ kind: g.kind, path: g.dir, digest: PLACEHOLDER, size: 1e12, metadata: groupMetadata(g.dir), encoding: 'tar' }, family);
  return canonicalJsonBytes(d).length + 1;
}

/**
 * One raw layer per file if the manifest fits, else the fewest tar groups that make it fit.
 * `reservedBytes`: what the manifest holds besides the layers and the fixed overhead (annotations).
 */
export function planLayers(files: PlanFile[], family: ModelFamily, keepMetadata: boolean, groupAll = false, reservedBytes = 0): LayerPlan {
  const sizes = new Map(files.map((f) => [f, singleBytes(f, family, keepMetadata)]));
  let total = MANIFEST_OVERHEAD + reservedBytes + [...sizes.values()].reduce((a, b) => a + b, 0);
  if (total <= MAX_MANIFEST_BYTES && !groupAll) return { singles: files, groups: [], manifestBytes: total };
  const byDir = new Map<string, TarGroup>();
  const ungrouped = { top: [] as PlanFile[], alone: [] as PlanFile[], weights: [] as PlanFile[] };
  for (const f of files) {
    if (Number(f.stats.size) >= SMALL_FILE) continue;
    if (f.kind === 'weight') {
      ungrouped.weights.push(f);
      continue;
    }
    const i = f.path.lastIndexOf('/');
    if (i < 0) {
      ungrouped.top.push(f); // files at the top stay single: a group needs a directory to be named by
      continue;
    }
    const dir = f.path.slice(0, i);
    const key = `${f.kind}\0${dir}`;
    const g = byDir.get(key) ?? byDir.set(key, { kind: f.kind, dir, files: [] }).get(key)!;
    g.files.push(f);
  }
  const saving = (g: TarGroup) => g.files.reduce((n, f) => n + sizes.get(f)!, 0) - groupBytes(g, family);
  const candidates = [...byDir.values()].filter((g) => g.files.length > 1).sort((a, b) => saving(b) - saving(a) || (a.dir < b.dir ? -1 : 1));
  ungrouped.alone = [...byDir.values()].filter((g) => g.files.length === 1).map((g) => g.files[0]!);
  const groups: TarGroup[] = [];
  for (const g of candidates) {
    if (total <= MAX_MANIFEST_BYTES && !groupAll) break;
    total -= saving(g);
    groups.push(g);
  }
  if (total > MAX_MANIFEST_BYTES) {
    throw new PackError('SIZE_EXCEEDS_LIMIT', `${files.length} files make a ${(total / 1048576).toFixed(1)} MiB manifest even with small files grouped; registries accept at most 4 MiB`, {
      hint: 'archive the many small files into a few (e.g. tar cf data.tar data/) and list the archives as DATASET',
    });
  }
  const grouped = new Set(groups.flatMap((g) => g.files));
  const plan: LayerPlan = { singles: files.filter((f) => !grouped.has(f)), groups, manifestBytes: total };
  if (groupAll) plan.ungrouped = ungrouped;
  return plan;
}

/** With `--group-small-files`: one warning saying which small files keep a layer each, and why. */
export function ungroupedWarning(plan: LayerPlan): string | undefined {
  const u = plan.ungrouped;
  const n = u ? u.top.length + u.alone.length + u.weights.length : 0;
  if (!u || n === 0) return undefined;
  const names = (fs: PlanFile[]) => fs.slice(0, 3).map((f) => f.path).join(', ') + (fs.length > 3 ? ` and ${fs.length - 3} more` : '');
  const why = [
    u.top.length ? `${names(u.top)} at the top of the model (a tar layer is named by its folder, and the top has none: move them into a folder to group them)` : '',
    u.alone.length ? `${names(u.alone)} alone in ${u.alone.length === 1 ? 'its folder' : 'their folders'} (the only small file of ${u.alone.length === 1 ? 'its' : 'their'} kind there: a tar of one file saves nothing)` : '',
    u.weights.length ? `${names(u.weights)} (weights always keep a layer of their own)` : '',
  ].filter(Boolean);
  return `--group-small-files: ${n} small ${n === 1 ? 'file keeps' : 'files keep'} a layer each: ${why.join('; ')}`;
}

/**
 * Writes a group's tar into `tmp` while hashing it: each file is read once. Returns the digest
 * and size of the tar. Throws when a file changes size while it is read.
 */
export async function writeTarGroup(g: TarGroup, tmp: string, onBytes: (n: number) => void, signal?: AbortSignal): Promise<{ digest: string; size: number }> {
  const out = await open(tmp, 'wx', 0o644).catch((e: unknown) => {
    throw fsError(e, tmp, 'cannot write');
  });
  const tar = tarPack();
  const hash = createHash('sha256');
  let size = 0;
  const producer = (async () => {
    for (const f of [...g.files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
      signal?.throwIfAborted();
      const expected = Number(f.stats.size);
      const body = readSmallFile(f.absPath, expected);
      const mode = normalisedMode(Number(f.stats.mode));
      await new Promise<void>((resolve, reject) => {
        tar.entry({ name: f.path, size: expected, mode, uid: 0, gid: 0, uname: '', gname: '', mtime: new Date(0), type: 'file' }, body, (err) => (err ? reject(err) : resolve()));
      });
      onBytes(expected);
    }
    tar.finalize();
  })().catch((e: unknown) => {
    tar.destroy(e as Error);
    throw e;
  });
  const consumer = (async () => {
    // tar-stream yields a header, the data and padding per entry: write in 1 MiB runs, not 3 calls per file.
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const flush = async () => {
      if (pendingBytes) await out.write(Buffer.concat(pending, pendingBytes));
      [pending, pendingBytes] = [[], 0];
    };
    try {
      for await (const c of tar as AsyncIterable<Buffer>) {
        hash.update(c);
        size += c.length;
        pending.push(c);
        pendingBytes += c.length;
        if (pendingBytes >= 1 << 20) await flush();
      }
      await flush();
    } finally {
      await out.close();
    }
  })().catch((e: unknown) => {
    tar.destroy(e as Error); // the producer must not wait for a reader that is gone
    throw e;
  });
  const [a, b] = await Promise.allSettled([producer, consumer]);
  if (a.status === 'rejected') throw a.reason;
  if (b.status === 'rejected') throw fsError(b.reason, tmp, 'cannot write');
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

/**
 * Reads a small file (under SMALL_FILE) whole, synchronously: four thread-pool round trips per
 * file would cost more than the read. Fails if the file is not the size it was when planned.
 */
function readSmallFile(path: string, expected: number): Buffer {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const buf = Buffer.allocUnsafe(expected + 1);
    let n = 0;
    for (let r; (r = readSync(fd, buf, n, buf.length - n, null)) > 0; ) n += r;
    if (n !== expected) throw fileChangedError(path);
    return buf.subarray(0, n);
  } catch (e) {
    throw fsError(e, path, 'cannot read');
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
