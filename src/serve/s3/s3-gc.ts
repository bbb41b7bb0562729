/**
 * Garbage collection of a bucket shared by several replicas, which hold no lock on each other:
 *   1. upload sessions untouched for the upload time-to-live (and multipart uploads nobody names);
 *   2. per repository, blob links older than the grace period that no manifest names, referrers
 *      entries whose manifest is gone, and emptied tags (a deleted manifest's) past the grace period;
 *   3. mark, then sweep: a pool blob that nothing links is recorded in `_gc/marks.json` with the time
 *      it was first seen unlinked, and deleted only by a pass that finds it still unlinked a grace
 *      period after that (and itself older than the grace period). A push in progress (blobs
 *      uploaded, manifest not yet) or a mount on another replica has that long to link it; a link
 *      written while the pass runs is checked by the writer (S3Store.linkBlob reads the blob back).
 * Several collectors at once do no harm: each only deletes what stayed unreferenced that long.
 */
import { parseDigest } from '../../oci/digest.js';
import { MAX_MANIFEST_BYTES, parseManifest } from '../../oci/manifest.js';
import type { GcOptions, GcResult } from '../gc.js';
import type { S3Store } from './s3-store.js';
import { repoKey } from './s3-store.js';
import type { S3Uploads } from './s3-uploads.js';

const MARKS = '_gc/marks.json';

export async function collectS3Garbage(store: S3Store, uploads: S3Uploads, opts: GcOptions = {}): Promise<GcResult> {
  const run = (): Promise<GcResult> => collect(store, uploads, opts);
  return opts.gate ? opts.gate.withExclusive(run) : run();
}

async function collect(store: S3Store, uploads: S3Uploads, opts: GcOptions): Promise<GcResult> {
  const now = opts.now ?? Date.now();
  const grace = opts.graceMs ?? 3600_000;
  const bucket = store.bucket;
  const dry = !!opts.dryRun;
  const del = async (key: string): Promise<void> => {
    if (!dry) await bucket.del(key);
  };
  const r: GcResult = { uploadsRemoved: 0, uploadBytes: 0, tempsRemoved: 0, tempBytes: 0, linksRemoved: 0, referrersRemoved: 0, linkBytes: 0, blobsRemoved: 0, blobBytes: 0, bytesFreed: 0, blobs: [], problems: [] };
  const expired = await uploads.expire({ now, dryRun: dry });
  r.uploadsRemoved = expired.sessions;
  r.uploadBytes = expired.bytes;

  const linked = new Set<string>();
  for (const repo of await store.listRepositories()) {
    const base = repoKey(repo);
    const referenced = new Set<string>();
    const manifests = new Set<string>();
    for await (const o of bucket.list(`${base}_manifests/`)) {
      const digest = digestOf(o.key.slice(`${base}_manifests/`.length));
      if (!digest) continue;
      manifests.add(digest);
      linked.add(digest);
      try {
        const m = await store.getManifest(repo, digest);
        if (!m) throw new Error('its content is missing from the pool');
        if (m.bytes.length > MAX_MANIFEST_BYTES) throw new Error('larger than a manifest may be');
        const p = parseManifest(m.bytes, m.mediaType);
        for (const c of p.kind === 'manifest' ? [p.manifest.config, ...p.manifest.layers] : p.index.manifests) referenced.add(c.digest);
      } catch (e) {
        r.problems.push(`${repo}@${digest}: ${(e as Error).message}`);
        referenced.add('*'); // keep every blob of a repository whose manifests cannot all be read
      }
    }
    for await (const o of bucket.list(`${base}_blobs/`)) {
      const digest = digestOf(o.key.slice(`${base}_blobs/`.length));
      if (!digest) continue;
      if (!referenced.has('*') && !referenced.has(digest) && now - o.lastModified > grace) {
        await del(o.key);
        r.linksRemoved++;
        r.linkBytes += o.size;
      } else linked.add(digest);
    }
    for await (const o of bucket.list(`${base}_referrers/`)) {
      const entry = o.key.split('/').at(-1)!;
      if (manifests.has(entry.replace('-', ':'))) continue;
      await del(o.key);
      r.referrersRemoved++;
      r.linkBytes += o.size;
    }
    for await (const o of bucket.list(`${base}_tags/`)) {
      if (o.size === 0 && now - o.lastModified > grace) await del(o.key);
    }
  }

  const marks = await readMarks(store);
  const next: Record<string, number> = {};
  for await (const o of bucket.list('blobs/')) {
    const digest = digestOf(o.key.slice('blobs/'.length));
    if (!digest || linked.has(digest)) continue;
    const first = marks[digest] ?? now;
    if (now - o.lastModified > grace && now - first >= grace) {
      await del(o.key);
      r.blobsRemoved++;
      r.blobBytes += o.size;
      r.blobs.push(digest);
    } else next[digest] = first;
  }
  if (!dry) await bucket.put(MARKS, JSON.stringify({ at: new Date(now).toISOString(), unlinkedSince: next }));
  if (!dry) store.invalidate();
  r.bytesFreed = r.blobBytes + r.uploadBytes + r.tempBytes + r.linkBytes;
  return r;
}

function digestOf(algHex: string): string | undefined {
  const [alg, hex, more] = algHex.split('/');
  if (!alg || !hex || more !== undefined) return undefined;
  try {
    parseDigest(`${alg}:${hex}`);
    return `${alg}:${hex}`;
  } catch {
    return undefined;
  }
}

async function readMarks(store: S3Store): Promise<Record<string, number>> {
  const got = await store.bucket.getSmall(MARKS, 64 * 1024 * 1024).catch(() => undefined);
  try {
    const doc = got ? (JSON.parse(got.bytes.toString('utf8')) as { unlinkedSince?: Record<string, number> }) : undefined;
    return doc?.unlinkedSince && typeof doc.unlinkedSince === 'object' ? doc.unlinkedSince : {};
  } catch {
    return {};
  }
}
