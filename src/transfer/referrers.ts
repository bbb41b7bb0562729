/**
 * `mpk attach` and `mpk referrers`: artifacts (an SBOM, eval results, a model card) that point at
 * a model by `subject`, in the local store (unnamed index.json entries, src/store/referrers.ts) or
 * in a registry (pushed by digest; the referrers API or its `sha256-<hex>` tag fallback, which
 * RemoteRepository keeps up to date on push).
 * Reference: https://github.com/opencontainers/image-spec/blob/v1.1.1/manifest.md#guidelines-for-artifact-usage
 */
import { readFile, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { PackError, fsError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { digestBytes } from '../oci/digest.js';
import { canonicalJsonBytes } from '../oci/canonical-json.js';
import { parseManifest, type Manifest, type ParsedManifest } from '../oci/manifest.js';
import { ANNOTATION_TITLE, OCI_EMPTY, OCI_MANIFEST } from '../oci/media-types.js';
import { formatReference, parseReference } from '../oci/reference.js';
import { RemoteRepository } from '../registry/repository.js';
import { addLocalReferrer, localReferrers } from '../store/referrers.js';
import type { LocalStore } from '../store/store.js';
import { makeClient, type TransferOptions } from './transfer.js';

/** Attached files are read whole: artifacts, not weights. */
export const MAX_ATTACH_FILE_BYTES = 512 * 1024 * 1024;
/** How deep `referrers` follows referrers of referrers. */
export const MAX_REFERRER_DEPTH = 8;

const EMPTY_JSON = Buffer.from('{}');
export const EMPTY_DESCRIPTOR: Descriptor = { mediaType: OCI_EMPTY, digest: digestBytes(EMPTY_JSON), size: 2 };

const BY_SUFFIX: [string, string][] = [
  ['.spdx.json', 'application/spdx+json'],
  ['.cdx.json', 'application/vnd.cyclonedx+json'],
  ['.intoto.jsonl', 'application/vnd.in-toto+json'],
  ['.json', 'application/json'],
  ['.jsonl', 'application/jsonl'],
  ['.md', 'text/markdown'],
  ['.txt', 'text/plain'],
  ['.csv', 'text/csv'],
  ['.yaml', 'application/yaml'],
  ['.yml', 'application/yaml'],
  ['.html', 'text/html'],
  ['.pdf', 'application/pdf'],
  ['.png', 'image/png'],
];

/** A layer's media type from the file name; `application/octet-stream` when unknown. */
export function guessMediaType(name: string): string {
  const lower = name.toLowerCase();
  return BY_SUFFIX.find(([suffix]) => lower.endsWith(suffix))?.[1] ?? 'application/octet-stream';
}

export interface AttachFile {
  name: string;
  bytes: Buffer;
  desc: Descriptor;
}

/** The artifact manifest: empty config, one layer per file (titled), `subject`; canonical JSON. */
export function referrerManifest(subject: Descriptor, artifactType: string, files: AttachFile[]): { bytes: Buffer; desc: Descriptor; manifest: Manifest } {
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType,
    config: EMPTY_DESCRIPTOR,
    layers: files.map((f) => f.desc),
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
  };
  const bytes = canonicalJsonBytes(manifest);
  return { bytes, manifest, desc: { mediaType: OCI_MANIFEST, digest: digestBytes(bytes), size: bytes.length, artifactType } };
}

async function readAttachFile(path: string): Promise<AttachFile> {
  let bytes: Buffer;
  try {
    const s = await stat(path);
    if (!s.isFile()) throw new PackError('USAGE', `${path}: not a regular file`);
    if (s.size > MAX_ATTACH_FILE_BYTES) throw new PackError('SIZE_EXCEEDS_LIMIT', `${path}: ${s.size} bytes is over the ${MAX_ATTACH_FILE_BYTES}-byte limit for attached files`);
    bytes = await readFile(path);
  } catch (e) {
    if (e instanceof PackError) throw e;
    throw fsError(e, path);
  }
  const name = basename(path);
  return { name, bytes, desc: { mediaType: guessMediaType(name), digest: digestBytes(bytes), size: bytes.length, annotations: { [ANNOTATION_TITLE]: name } } };
}

export interface AttachResult {
  reference: string;
  subject: Descriptor;
  descriptor: Descriptor;
  manifest: Manifest;
}

/** Attaches `paths` to the model `reference` names (local store, or a registry when it has a host). */
export async function attach(store: LocalStore | undefined, reference: string, artifactType: string, paths: string[], opts: TransferOptions = {}): Promise<AttachResult> {
  if (paths.length === 0) throw new PackError('USAGE', 'attach: no files to attach');
  const files = await Promise.all(paths.map(readAttachFile));
  const names = new Set<string>();
  for (const f of files) {
    if (names.has(f.name)) throw new PackError('USAGE', `attach: two files named ${f.name}`, { hint: 'each file is a layer titled by its name: rename one' });
    names.add(f.name);
  }
  const ref = parseReference(reference);
  if (ref.registry) {
    const client = makeClient(opts);
    try {
      const repo = RemoteRepository.fromReference(client, ref);
      const subject = await repo.resolve(ref.digest ?? ref.tag ?? 'latest', opts);
      const m = await writeRemoteReferrer(repo, subject, artifactType, files, opts);
      return { reference: formatReference(ref), subject, descriptor: m.desc, manifest: m.manifest };
    } finally {
      client.close();
    }
  }
  if (!store) throw new PackError('USAGE', `${reference}: a local name needs the local store`);
  const subject = await store.resolve(reference);
  const m = await writeLocalReferrer(store, subject, artifactType, files);
  return { reference, subject, descriptor: m.desc, manifest: m.manifest };
}

/** Pushes a referrer of `subject` (already resolved: pinned) and its blobs to a registry, by digest. */
export async function writeRemoteReferrer(repo: RemoteRepository, subject: Descriptor, artifactType: string, files: AttachFile[], opts: TransferOptions = {}): Promise<ReturnType<typeof referrerManifest>> {
  const m = referrerManifest(subject, artifactType, files);
  for (const [desc, bytes] of [[EMPTY_DESCRIPTOR, EMPTY_JSON] as const, ...files.map((f) => [f.desc, f.bytes] as const)]) {
    if (!(await repo.exists(desc, opts))) await repo.push(desc, bytes, opts);
  }
  await repo.push(m.desc, m.bytes, opts); // by digest; the fallback tag when OCI-Subject is not answered
  return m;
}

/** Stores a referrer of `subject` (a stored manifest) and its blobs as a nameless index.json entry. */
export async function writeLocalReferrer(store: LocalStore, subject: Descriptor, artifactType: string, files: AttachFile[]): Promise<ReturnType<typeof referrerManifest>> {
  const m = referrerManifest(subject, artifactType, files);
  await store.push(EMPTY_DESCRIPTOR, EMPTY_JSON);
  for (const f of files) await store.push(f.desc, f.bytes);
  await store.push(m.desc, m.bytes);
  await addLocalReferrer(store, m.desc, subject);
  return m;
}

export interface ReferrerNode {
  digest: string;
  mediaType: string;
  artifactType?: string;
  /** The files' bytes (layers). */
  size: number;
  files: { name?: string; mediaType: string; digest: string; size: number }[];
  referrers: ReferrerNode[];
  /** Already on the path above (a cycle): not followed. */
  cycle?: true;
  /** Past the depth limit: its referrers were not listed. */
  truncated?: true;
}

export interface ReferrerTree {
  reference: string;
  digest: string;
  mediaType: string;
  referrers: ReferrerNode[];
}

interface Side {
  list(subject: Descriptor): Promise<Descriptor[]>;
  read(desc: Descriptor): Promise<ParsedManifest>;
}

/** The referrers of what `reference` names, recursively (depth ≤ MAX_REFERRER_DEPTH, cycles cut). */
export async function referrerTree(store: LocalStore | undefined, reference: string, artifactType?: string, opts: TransferOptions = {}): Promise<ReferrerTree> {
  const ref = parseReference(reference);
  if (ref.registry) {
    const client = makeClient(opts);
    try {
      const repo = RemoteRepository.fromReference(client, ref);
      const root = await repo.resolve(ref.digest ?? ref.tag ?? 'latest', opts);
      const side: Side = {
        list: (d) => repo.referrers(d, artifactType, opts),
        read: async (d) => parseManifest((await repo.fetchManifest(d, opts)).bytes, d.mediaType, d.digest),
      };
      return { reference: formatReference(ref), digest: root.digest, mediaType: root.mediaType, referrers: await walk(side, root, [root.digest]) };
    } finally {
      client.close();
    }
  }
  if (!store) throw new PackError('USAGE', `${reference}: a local name needs the local store`);
  const root = await store.resolve(reference);
  const side: Side = { list: (d) => localReferrers(store, d.digest, artifactType), read: (d) => store.readManifest(d) };
  return { reference, digest: root.digest, mediaType: root.mediaType, referrers: await walk(side, root, [root.digest]) };
}

async function walk(side: Side, subject: Descriptor, path: string[]): Promise<ReferrerNode[]> {
  const found = await side.list(subject);
  const seen = new Set<string>();
  const out: ReferrerNode[] = [];
  for (const d of found.sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0))) {
    if (seen.has(d.digest)) continue;
    seen.add(d.digest);
    const parsed = await side.read(d);
    const layers = parsed.kind === 'manifest' ? parsed.manifest.layers : parsed.index.manifests;
    const doc = parsed.kind === 'manifest' ? parsed.manifest : parsed.index;
    const node: ReferrerNode = {
      digest: d.digest,
      mediaType: d.mediaType,
      size: layers.reduce((n, l) => n + l.size, 0),
      files: layers.map((l) => ({ ...(l.annotations?.[ANNOTATION_TITLE] ? { name: l.annotations[ANNOTATION_TITLE] } : {}), mediaType: l.mediaType, digest: l.digest, size: l.size })),
      referrers: [],
    };
    const type = d.artifactType ?? doc.artifactType ?? (parsed.kind === 'manifest' ? parsed.manifest.config.mediaType : undefined);
    if (type) node.artifactType = type;
    if (path.includes(d.digest)) node.cycle = true;
    else if (path.length > MAX_REFERRER_DEPTH) node.truncated = true;
    else node.referrers = await walk(side, d, [...path, d.digest]);
    out.push(node);
  }
  return out;
}
