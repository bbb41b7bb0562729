/**
 * Where signatures are read from: the store's nameless referrers or a registry's referrers (API,
 * else the `sha256-<hex>` tag), of the bundle artifact type only. Candidates are read one at a
 * time, when the verdict asks (so at most one bundle is in memory): the referrer manifest, then
 * its bundle, whole but bounded (MAX_BUNDLE_BYTES) and checked against its digest.
 */
import { PackError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { VerifyStream } from '../oci/digest.js';
import { parseManifest, type ParsedManifest } from '../oci/manifest.js';
import type { RemoteRepository } from '../registry/repository.js';
import { localReferrers } from '../store/referrers.js';
import type { LocalStore } from '../store/store.js';
import { BUNDLE_MEDIA_TYPE, MAX_BUNDLE_BYTES } from './bundle.js';

/** Referrers examined at most: a registry cannot keep a verifier busy forever. */
export const MAX_SIGNATURE_REFERRERS = 64;

export interface BundleSource {
  /** Where the signatures come from, for messages: `the store`, `HOST/NAME`. */
  label: string;
  list(subject: Descriptor): Promise<Descriptor[]>;
  readManifest(desc: Descriptor): Promise<ParsedManifest>;
  readBlob(desc: Descriptor): Promise<Buffer>;
}

export interface Candidate {
  /** The referrer manifest's digest. */
  referrer: string;
  source: string;
  /** Reads the bundle's bytes (a PackError when the artifact is unreadable or malformed). */
  load(): Promise<Buffer>;
}

export function localSource(store: LocalStore): BundleSource {
  return {
    label: 'the store',
    list: (subject) => localReferrers(store, subject.digest, BUNDLE_MEDIA_TYPE),
    readManifest: (d) => store.readManifest(d),
    readBlob: (d) => store.blobs.read(d, MAX_BUNDLE_BYTES),
  };
}

export function remoteSource(repo: RemoteRepository, signal?: AbortSignal): BundleSource {
  const opts = signal ? { signal } : {};
  return {
    label: `${repo.host}/${repo.name}`,
    list: (subject) => repo.referrers(subject, BUNDLE_MEDIA_TYPE, opts),
    readManifest: async (d) => parseManifest((await repo.fetchManifest(d, opts)).bytes, d.mediaType, d.digest),
    readBlob: async (d) => {
      const verify = new VerifyStream(d);
      const stream = await repo.fetch(d, opts);
      stream.on('error', (e) => verify.destroy(e));
      const chunks: Buffer[] = [];
      for await (const c of stream.pipe(verify) as AsyncIterable<Buffer>) chunks.push(c);
      return Buffer.concat(chunks);
    },
  };
}

/** The bundle layer of a signature referrer: the one of the bundle type, else its only layer. */
function bundleLayer(parsed: ParsedManifest, referrer: string): Descriptor {
  const layers = parsed.kind === 'manifest' ? parsed.manifest.layers : [];
  const layer = layers.find((l) => l.mediaType === BUNDLE_MEDIA_TYPE) ?? (layers.length === 1 ? layers[0] : undefined);
  if (!layer) throw new PackError('BUNDLE_INVALID', `${referrer}: a signature artifact without a bundle layer`, { hint: 'sign the model again (mpk sign)' });
  if (layer.size > MAX_BUNDLE_BYTES) throw new PackError('BUNDLE_INVALID', `${referrer}: its bundle of ${layer.size} bytes is over the ${MAX_BUNDLE_BYTES}-byte limit`, { hint: 'sign the model again (mpk sign)' });
  return layer;
}

/** Every signature candidate of `subject` in `source` (deduplicated, digest order, bounded). */
export async function candidates(source: BundleSource, subject: Descriptor): Promise<Candidate[]> {
  const seen = new Set<string>();
  const list = (await source.list(subject)).filter((d) => !seen.has(d.digest) && seen.add(d.digest));
  list.sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
  return list.slice(0, MAX_SIGNATURE_REFERRERS).map((d) => ({
    referrer: d.digest,
    source: source.label,
    load: async () => {
      const parsed = await source.readManifest(d);
      const doc = parsed.kind === 'manifest' ? parsed.manifest : parsed.index;
      if (doc.subject?.digest !== subject.digest) throw new PackError('BUNDLE_INVALID', `${d.digest}: listed as a signature of ${subject.digest} but its subject is ${doc.subject?.digest ?? 'missing'}`);
      return source.readBlob(bundleLayer(parsed, d.digest));
    },
  }));
}
