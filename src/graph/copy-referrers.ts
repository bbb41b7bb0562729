/**
 * `--referrers` on push, pull and copy (as `oras cp -r`): the artifacts whose `subject` is the
 * copied model (an SBOM, eval results, signatures), the referrers of those in turn, and for an
 * index the referrers of the index and of every manifest under it.
 *
 * Two phases, so that a bad referrer graph stores nothing:
 * 1. `planReferrers` walks the source before anything is written: lists the referrers of each
 *    subject, reads (and verifies) each referrer manifest, checks that its `subject` really is
 *    that subject, refuses a cycle (a listed referrer that is already on the path above) and a
 *    chain deeper than MAX_REFERRER_COPY_DEPTH; each referrer once (a diamond is fine).
 * 2. `copyReferrers` copies each planned referrer's graph (its blobs) and then writes it at the
 *    destination through a `ReferrerSink` (a registry: PUT by digest, with the sha256-<hex> tag
 *    where the registry has no referrers API; the store: a nameless index.json entry), parents
 *    before their own referrers.
 *
 * graph/ knows only content/ interfaces: the two sides are given as small interfaces here and
 * implemented over LocalStore and RemoteRepository in transfer/referrer-sides.ts.
 */
import { PackError } from '../errors.js';
import type { CallOptions, ReadOnlyStorage, Storage } from '../content/storage.js';
import type { Descriptor } from '../oci/descriptor.js';
import { isIndexMediaType } from '../oci/media-types.js';
import { isManifestLike, parseManifest } from '../oci/manifest.js';
import { MAX_INDEX_DEPTH, copyGraph, fetchManifestBytes, type CopyGraphOptions, type CopyStats } from './copy.js';

/** Referrers of referrers are followed this many levels down; deeper is refused. */
export const MAX_REFERRER_COPY_DEPTH = 8;
/** Referrers planned at most in one copy (each is a manifest read): a registry's list cannot make us read forever. */
export const MAX_REFERRERS = 10_000;

/** Lists the manifests whose subject is `subject` (a registry's referrers API or tag, the store's nameless entries). */
export interface ReferrerSource {
  referrers(subject: Descriptor, artifactType?: string, opts?: CallOptions): Promise<Descriptor[]>;
}

/**
 * Writes a referrer manifest whose blobs are in place, so that it is listed as a referrer of
 * `subject`; false when the destination already had it listed (nothing written).
 */
export interface ReferrerSink {
  writeReferrer(desc: Descriptor, bytes: Buffer, subject: Descriptor, opts?: CallOptions): Promise<boolean>;
}

export interface PlannedReferrer {
  desc: Descriptor;
  bytes: Buffer;
  subject: Descriptor;
  /** 1 for a referrer of the copied model, 2 for a referrer of that, … */
  depth: number;
}

const plain = (d: Descriptor): Descriptor => {
  const out: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (d.artifactType) out.artifactType = d.artifactType;
  return out;
};

const byDigest = (a: Descriptor, b: Descriptor) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0);

/**
 * Every manifest and index of the graph under `root` (itself included): the subjects whose
 * referrers go along. Indexes are read (at most MAX_INDEX_DEPTH deep, as the copy allows).
 */
async function subjectsOf(src: ReadOnlyStorage, root: Descriptor, rootBytes: Buffer | undefined, signal?: AbortSignal): Promise<Descriptor[]> {
  const out: Descriptor[] = [];
  const seen = new Set<string>();
  const visit = async (d: Descriptor, bytes: Buffer | undefined, depth: number): Promise<void> => {
    if (seen.has(d.digest)) return;
    seen.add(d.digest);
    out.push(d);
    if (!isIndexMediaType(d.mediaType)) return;
    if (depth >= MAX_INDEX_DEPTH) {
      throw new PackError('INVALID_MANIFEST', `${d.digest}: indexes nested more than ${MAX_INDEX_DEPTH} deep`, { hint: 'nothing was stored; an index of indexes this deep is not a model' });
    }
    const parsed = parseManifest(bytes ?? (await fetchManifestBytes(src, d, signal)), d.mediaType, d.digest);
    if (parsed.kind !== 'index') return;
    for (const c of parsed.index.manifests) if (isManifestLike(c.mediaType)) await visit(c, undefined, depth + 1);
  };
  await visit(root, rootBytes, 0);
  return out;
}

/**
 * The referrers to copy along with `root` (whose bytes the caller has read), parents before their
 * own referrers. Reads manifests only; writes nothing. Errors (INVALID_MANIFEST) for a cycle, a
 * chain deeper than MAX_REFERRER_COPY_DEPTH, or a listed referrer whose subject is another.
 */
export async function planReferrers(src: ReadOnlyStorage, lister: ReferrerSource, root: Descriptor, rootBytes: Buffer, opts: CallOptions = {}): Promise<PlannedReferrer[]> {
  const signal = opts.signal;
  const planned: PlannedReferrer[] = [];
  const placed = new Set<string>();
  const listed = new Set<string>();
  const visit = async (subject: Descriptor, path: string[], depth: number): Promise<void> => {
    if (listed.has(subject.digest)) return;
    listed.add(subject.digest);
    const found = (await lister.referrers(subject, undefined, { signal })).filter((d) => isManifestLike(d.mediaType)).sort(byDigest);
    for (const r of found) {
      if (path.includes(r.digest)) {
        throw new PackError('INVALID_MANIFEST', `${r.digest}: a cycle through referrers (it is listed as a referrer of ${subject.digest}, which it is above)`, {
          hint: "nothing was stored; the source's referrers list is wrong: copy without --referrers",
        });
      }
      if (placed.has(r.digest)) continue;
      if (depth + 1 > MAX_REFERRER_COPY_DEPTH) {
        throw new PackError('INVALID_MANIFEST', `${r.digest}: referrers nested more than ${MAX_REFERRER_COPY_DEPTH} deep (a referrer of a referrer of …)`, {
          hint: 'nothing was stored; copy without --referrers, or copy the deeper referrers by digest',
        });
      }
      if (planned.length >= MAX_REFERRERS) throw new PackError('SIZE_EXCEEDS_LIMIT', `${root.digest}: more than ${MAX_REFERRERS} referrers`, { hint: 'nothing was stored; copy without --referrers' });
      const bytes = await fetchManifestBytes(src, r, signal);
      const parsed = parseManifest(bytes, r.mediaType, r.digest);
      const doc = parsed.kind === 'manifest' ? parsed.manifest : parsed.index;
      if (doc.subject?.digest !== subject.digest) {
        throw new PackError('INVALID_MANIFEST', `${r.digest}: listed as a referrer of ${subject.digest}, but its subject is ${doc.subject?.digest ?? 'missing'}`, {
          hint: "nothing was stored; the source's referrers list (or its sha256-<hex> tag) is wrong: copy without --referrers",
        });
      }
      placed.add(r.digest);
      const desc = plain({ ...r, artifactType: r.artifactType ?? doc.artifactType });
      planned.push({ desc, bytes, subject: plain(subject), depth: depth + 1 });
      for (const s of await subjectsOf(src, desc, bytes, signal)) await visit(s, [...path, r.digest], depth + 1);
    }
  };
  const subjects = await subjectsOf(src, root, rootBytes, signal);
  const rootPath = subjects.map((s) => s.digest);
  for (const s of subjects) await visit(s, rootPath, 0);
  return planned;
}

export interface ReferrersCopyResult {
  /** Referrers planned (copied or already at the destination). */
  referrers: number;
  stats: CopyStats;
}

/** Copies the planned referrers: each one's blobs, then the referrer itself (parents first). */
export async function copyReferrers(src: ReadOnlyStorage, dst: Storage, sink: ReferrerSink, planned: PlannedReferrer[], opts: CopyGraphOptions = {}): Promise<ReferrersCopyResult> {
  const stats: CopyStats = { blobs: 0, transferred: 0, bytes: 0, skipped: 0, mounted: 0 };
  for (const p of planned) {
    opts.signal?.throwIfAborted();
    const s = await copyGraph(src, dst, p.desc, opts, new Map([[p.desc.digest, p.bytes]]));
    for (const k of Object.keys(stats) as (keyof CopyStats)[]) stats[k] += s[k];
    if (await sink.writeReferrer(p.desc, p.bytes, p.subject, { ...(opts.signal ? { signal: opts.signal } : {}) })) stats.transferred++;
    else stats.skipped++;
  }
  return { referrers: planned.length, stats };
}
