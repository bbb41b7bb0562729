/**
 * Variant indexes: an OCI image index whose entries are the variants of one model (quantizations,
 * formats, platforms), each entry annotated with what selection needs (quantization, format,
 * parameter size, weight bytes) so that a pull chooses without reading the variants.
 *
 * Deterministic: canonical JSON, no timestamp, entries in the order given (`add` appends, or
 * updates an entry of the same digest in place; `rm` keeps the order of the rest). The same
 * variants in the same order give the same digest.
 *
 * Variants must be model manifests (ModelPack, Docker Model Runner or Ollama) or indexes of them
 * (nested: platforms of quantizations, say; at most MAX_INDEX_DEPTH levels in all), of one
 * artifact type; anything else is refused.
 */
import { PackError } from '../errors.js';
import type { Descriptor, Platform } from '../oci/descriptor.js';
import { canonicalJsonBytes } from '../oci/canonical-json.js';
import { digestBytes } from '../oci/digest.js';
import type { Index, Manifest } from '../oci/manifest.js';
import {
  ANNOTATION_FORMAT,
  ANNOTATION_PARAM_SIZE,
  ANNOTATION_PRECISION,
  ANNOTATION_QUANTIZATION,
  ANNOTATION_WEIGHT_BYTES,
  OCI_INDEX,
  isIndexMediaType,
  isManifestMediaType,
} from '../oci/media-types.js';
import { precisionName } from '../graph/precision.js';
import { MAX_INDEX_DEPTH } from '../graph/copy.js';
import { indexLevels } from '../graph/index-depth.js';
import { modelMeta, type ModelMeta } from '../interop/metadata.js';
import type { LocalStore } from '../store/store.js';
import { modelView } from './model-view.js';

const MAX_CONFIG_BYTES = 1024 * 1024;

/** One variant on the command line: a stored model's reference and, optionally, its platform. */
export interface VariantArg {
  reference: string;
  platform?: Platform;
}

/** `REF` or `REF,platform=OS/ARCH[/VARIANT]` (a comma never occurs in a reference). */
export function parseVariantArg(text: string): VariantArg {
  const [reference, ...opts] = text.split(',');
  const out: VariantArg = { reference: reference! };
  for (const o of opts) {
    const m = /^platform=([^/\s]+)\/([^/\s]+)(?:\/([^/\s]+))?$/.exec(o);
    if (!m) throw new PackError('USAGE', `${text}: ${JSON.stringify(o)} is not platform=OS/ARCH[/VARIANT]`, { hint: 'e.g. models/llama:q8,platform=linux/arm64' });
    out.platform = { os: m[1]!, architecture: m[2]!, ...(m[3] ? { variant: m[3] } : {}) };
  }
  if (!out.reference) throw new PackError('USAGE', `${text}: no reference`);
  return out;
}

/** What an index entry says about its variant (from its annotations). */
export interface VariantInfo {
  digest: string;
  mediaType?: string;
  /** Bytes of the variant's manifest. */
  size: number;
  artifactType?: string;
  quantization?: string;
  precision?: string;
  format?: string;
  paramSize?: string;
  weightBytes?: number;
  platform?: string;
  /** Whether the variant (manifest and every blob) is in the store (local inspect and ls). */
  stored?: boolean;
}

/** The index entry of one stored model (its descriptor with the variant annotations), or of a stored index (nested). */
export async function variantEntry(store: LocalStore, arg: VariantArg): Promise<Descriptor> {
  const desc = await store.resolve(arg.reference);
  if (isIndexMediaType(desc.mediaType)) return nestedEntry(store, arg, desc);
  const parsed = await store.readManifest(desc);
  if (parsed.kind !== 'manifest' || !isManifestMediaType(desc.mediaType)) {
    throw new PackError('INVALID_MANIFEST', `${arg.reference}: is a ${desc.mediaType}, neither a model manifest nor an index`);
  }
  const m = parsed.manifest;
  const view = modelView(m);
  if (view.format !== 'modelpack' && view.format !== 'docker-ai' && view.format !== 'ollama') {
    throw new PackError('USAGE', `${arg.reference}: is not a model manifest (a ${view.format} artifact, ${m.artifactType ?? m.config.mediaType})`, {
      hint: 'an index holds models built by mpk build (or imported / converted ones)',
    });
  }
  const meta = await metaOf(store, m, view.format);
  const weightBytes = view.files.filter((f) => f.kind === 'weight').reduce((n, f) => n + f.layer.size, 0);
  const annotations: Record<string, string> = { [ANNOTATION_WEIGHT_BYTES]: String(weightBytes) };
  const quantization = meta.quantization ?? precisionName(meta.precision);
  if (quantization) annotations[ANNOTATION_QUANTIZATION] = quantization;
  if (meta.precision) annotations[ANNOTATION_PRECISION] = meta.precision;
  if (meta.format) annotations[ANNOTATION_FORMAT] = meta.format;
  if (meta.paramSize) annotations[ANNOTATION_PARAM_SIZE] = meta.paramSize;
  const entry: Descriptor = { mediaType: desc.mediaType, digest: desc.digest, size: desc.size, artifactType: artifactTypeOf(m), annotations };
  if (arg.platform) entry.platform = arg.platform;
  return entry;
}

/**
 * An index as an entry of another (platforms of quantizations, say): its entries must be manifests
 * or indexes, and the new index may not nest more than MAX_INDEX_DEPTH levels (as a copy allows).
 * The entry carries the nested index's artifact type, and the platform where given.
 */
async function nestedEntry(store: LocalStore, arg: VariantArg, desc: Descriptor): Promise<Descriptor> {
  const parsed = await store.readManifest(desc);
  if (parsed.kind !== 'index') throw new PackError('INVALID_MANIFEST', `${arg.reference}: says it is an index but is not one`);
  // One level is the new index's: what it names may nest at most MAX_INDEX_DEPTH - 1 more.
  await indexLevels(store, desc, MAX_INDEX_DEPTH - 1, { name: `${arg.reference} (as an entry of a new index)` });
  const types = [...new Set(parsed.index.manifests.map((e) => e.artifactType))];
  const artifactType = parsed.index.artifactType ?? (types.length === 1 ? types[0] : undefined);
  const entry: Descriptor = { mediaType: desc.mediaType, digest: desc.digest, size: desc.size };
  if (artifactType) entry.artifactType = artifactType;
  if (arg.platform) entry.platform = arg.platform;
  return entry;
}

function artifactTypeOf(m: Manifest): string {
  return m.artifactType ?? m.config.mediaType;
}

async function metaOf(store: LocalStore, m: Manifest, format: 'modelpack' | 'docker-ai' | 'ollama'): Promise<ModelMeta> {
  if (m.config.size > MAX_CONFIG_BYTES || !(await store.exists(m.config))) return {};
  const bytes = await store.blobs.read(m.config, MAX_CONFIG_BYTES);
  try {
    return modelMeta(format, bytes);
  } catch {
    return {}; // an odd config: the entry says what it can (its weight bytes)
  }
}

/** The index document of these entries (they must share one artifact type). */
export function variantIndex(entries: Descriptor[], where: string): Index {
  if (entries.length === 0) throw new PackError('USAGE', `${where}: an index needs at least one variant`);
  const seen = new Set<string>();
  for (const e of entries) {
    if (seen.has(e.digest)) throw new PackError('USAGE', `${where}: variant ${e.digest} given twice`);
    seen.add(e.digest);
  }
  const types = [...new Set(entries.map((e) => e.artifactType))];
  if (types.length > 1) {
    throw new PackError('USAGE', `${where}: the variants are of different kinds (${types.join(', ')}); an index holds one kind`, {
      hint: 'convert them to one form first (mpk convert --format modelpack)',
    });
  }
  return { schemaVersion: 2, mediaType: OCI_INDEX, artifactType: types[0]!, manifests: entries };
}

/** Stores the index and names it `reference` (the tag moves to the new digest). */
export async function writeIndex(store: LocalStore, reference: string, index: Index): Promise<Descriptor> {
  const bytes = canonicalJsonBytes(index);
  const desc: Descriptor = { mediaType: OCI_INDEX, digest: digestBytes(bytes), size: bytes.length };
  if (index.artifactType) desc.artifactType = index.artifactType;
  await store.push(desc, bytes);
  await store.tag(desc, reference);
  return desc;
}

/** `mpk index create REF VARIANT...`: refused when REF already names something. */
export async function createIndex(store: LocalStore, reference: string, variants: VariantArg[]): Promise<{ descriptor: Descriptor; index: Index }> {
  const existing = await store.resolve(reference).catch(() => undefined);
  if (existing) {
    throw new PackError('ALREADY_EXISTS', `${reference}: already names ${isIndexMediaType(existing.mediaType) ? 'an index' : 'a model'} (${existing.digest.slice(0, 19)})`, {
      hint: isIndexMediaType(existing.mediaType) ? `change it with mpk index add / mpk index rm ${reference}` : `choose another name, or mpk rm ${reference} first`,
    });
  }
  const entries: Descriptor[] = [];
  for (const v of variants) entries.push(await variantEntry(store, v));
  const index = variantIndex(entries, reference);
  return { descriptor: await writeIndex(store, reference, index), index };
}

async function readIndexAt(store: LocalStore, reference: string): Promise<Index> {
  const desc = await store.resolve(reference);
  const parsed = await store.readManifest(desc);
  if (parsed.kind !== 'index') throw new PackError('USAGE', `${reference}: is a model, not an index`, { hint: `make one: mpk index create NAME:TAG ${reference} ...` });
  return parsed.index;
}

/** `mpk index add REF VARIANT...`: appended; a variant already there is updated in place. */
export async function addToIndex(store: LocalStore, reference: string, variants: VariantArg[]): Promise<{ descriptor: Descriptor; index: Index }> {
  const old = await readIndexAt(store, reference);
  const entries = [...old.manifests];
  for (const v of variants) {
    const e = await variantEntry(store, v);
    const at = entries.findIndex((x) => x.digest === e.digest);
    if (at >= 0) entries[at] = e;
    else entries.push(e);
  }
  const index = variantIndex(entries, reference);
  return { descriptor: await writeIndex(store, reference, index), index };
}

/**
 * `mpk index rm REF VARIANT...`: VARIANT is a digest (or its first 12+ hex digits), a stored
 * reference, or an annotation value as `--variant` takes it (Q8_0, KEY=VALUE). Each must match.
 */
export async function removeFromIndex(store: LocalStore, reference: string, selectors: string[]): Promise<{ descriptor: Descriptor; index: Index; removed: string[] }> {
  const old = await readIndexAt(store, reference);
  const drop = new Set<string>();
  for (const s of selectors) {
    const hits = await matchEntries(store, old.manifests, s);
    if (hits.length === 0) {
      throw new PackError('NOT_FOUND', `${reference}: no variant matches ${s}`, { hint: `the index holds: ${old.manifests.map(entryName).join(', ')}` });
    }
    for (const h of hits) drop.add(h.digest);
  }
  const entries = old.manifests.filter((e) => !drop.has(e.digest));
  if (entries.length === 0) throw new PackError('USAGE', `${reference}: removing ${selectors.join(' ')} would leave the index empty`, { hint: `remove the index itself: mpk rm ${reference}` });
  const index: Index = { ...old, manifests: entries };
  return { descriptor: await writeIndex(store, reference, index), index, removed: [...drop] };
}

async function matchEntries(store: LocalStore, entries: Descriptor[], s: string): Promise<Descriptor[]> {
  const hex = /^(?:sha256:)?([0-9a-f]{12,64})$/.exec(s)?.[1];
  if (hex) return entries.filter((e) => e.digest.startsWith(`sha256:${hex}`));
  const eq = s.indexOf('=');
  if (eq > 0) return entries.filter((e) => e.annotations?.[s.slice(0, eq)] === s.slice(eq + 1));
  const byValue = entries.filter((e) => Object.values(e.annotations ?? {}).some((v) => v.toLowerCase() === s.toLowerCase()));
  if (byValue.length > 0) return byValue;
  const desc = await store.resolve(s).catch(() => undefined);
  return desc ? entries.filter((e) => e.digest === desc.digest) : [];
}

function entryName(e: Descriptor): string {
  return `${e.annotations?.[ANNOTATION_QUANTIZATION] ?? (isIndexMediaType(e.mediaType) ? 'index' : '?')} (${e.digest.slice(0, 19)})`;
}

/** What each entry of an index says, and whether the variant is in the store. */
export async function variantsOf(store: LocalStore, index: Index): Promise<VariantInfo[]> {
  const out: VariantInfo[] = [];
  for (const e of index.manifests) {
    const a = e.annotations ?? {};
    const v: VariantInfo = { digest: e.digest, mediaType: e.mediaType, size: e.size, stored: await store.exists(e).catch(() => false) };
    if (e.artifactType) v.artifactType = e.artifactType;
    if (a[ANNOTATION_QUANTIZATION]) v.quantization = a[ANNOTATION_QUANTIZATION];
    if (a[ANNOTATION_PRECISION]) v.precision = a[ANNOTATION_PRECISION];
    if (a[ANNOTATION_FORMAT]) v.format = a[ANNOTATION_FORMAT];
    if (a[ANNOTATION_PARAM_SIZE]) v.paramSize = a[ANNOTATION_PARAM_SIZE];
    const wb = Number(a[ANNOTATION_WEIGHT_BYTES]);
    if (a[ANNOTATION_WEIGHT_BYTES] !== undefined && Number.isSafeInteger(wb)) v.weightBytes = wb;
    if (e.platform) v.platform = [e.platform.os, e.platform.architecture, e.platform.variant].filter(Boolean).join('/');
    out.push(v);
  }
  return out;
}
