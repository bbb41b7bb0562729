/**
 * A repository of the registry read as a model: the ModelSource that inspect's `describeModel`
 * takes (manifests through RegistryStorage.getManifest, small blobs through blob-text.ts), and the
 * facts the catalog lists for a tag: kind, format, parameters, quantization, architecture, size,
 * and for an index its variants.
 */
import { PackError } from '../../errors.js';
import type { Descriptor } from '../../oci/descriptor.js';
import { parseManifest, type ParsedManifest } from '../../oci/manifest.js';
import { ANNOTATION_FORMAT, ANNOTATION_PARAM_SIZE, ANNOTATION_PRECISION, ANNOTATION_QUANTIZATION } from '../../oci/media-types.js';
import { describeModel, type ModelSource } from '../../modelpack/inspect.js';
import type { RegistryStorage } from '../storage.js';
import { readSmallBlob } from './blob-text.js';

/** Variants of an index read for the listing (the rest are counted, not described). */
const MAX_VARIANTS = 32;

export function repoSource(store: RegistryStorage, name: string): ModelSource {
  return {
    async readManifest(desc: Descriptor): Promise<ParsedManifest> {
      const m = await store.getManifest(name, desc.digest);
      if (!m) throw new PackError('NOT_FOUND', `${name}@${desc.digest}: no such manifest in the registry`);
      return parseManifest(m.bytes, m.mediaType, `${name}@${desc.digest}`);
    },
    readBlob: (desc, maxBytes) => readSmallBlob(store, name, desc.digest, maxBytes),
  };
}

export interface VariantFacts {
  digest: string;
  mediaType: string;
  platform?: string;
  format?: string;
  paramSize?: string;
  quantization?: string;
  precision?: string;
  size: number;
}

/** What the catalog says of one manifest or index. */
export interface Facts {
  /** modelpack, docker-ai, ollama, oci-image, index, other, unreadable. */
  kind: string;
  mediaType: string;
  format?: string;
  paramSize?: string;
  quantization?: string;
  architecture?: string;
  name?: string;
  /** Manifest, config and layers (an index: each variant's), in bytes. */
  size: number;
  variants?: VariantFacts[];
}

/** The facts of `digest` in `name`; never throws (an odd manifest is `unreadable`). */
export async function factsOf(store: RegistryStorage, name: string, digest: string): Promise<Facts> {
  const source = repoSource(store, name);
  const stored = await store.getManifest(name, digest).catch(() => undefined);
  if (!stored) return { kind: 'unreadable', mediaType: '', size: 0 };
  const desc: Descriptor = { mediaType: stored.mediaType, digest, size: stored.bytes.length };
  try {
    const d = await describeModel(source, `${name}@${digest}`, desc, false);
    const facts: Facts = { kind: d.kind, mediaType: stored.mediaType, size: d.size };
    for (const k of ['format', 'paramSize', 'quantization', 'architecture', 'name'] as const) if (d[k]) facts[k] = d[k];
    if (d.kind !== 'index' || !('manifests' in d.manifest)) return facts;
    const variants: VariantFacts[] = [];
    let size = stored.bytes.length;
    for (const [i, e] of d.manifest.manifests.entries()) {
      const a = e.annotations ?? {};
      const v: VariantFacts = { digest: e.digest, mediaType: e.mediaType, size: e.size };
      const child = i < MAX_VARIANTS ? await describeModel(source, name, e, false).catch(() => undefined) : undefined;
      if (child) v.size = child.size;
      const pick = (k: 'format' | 'paramSize' | 'quantization' | 'precision', ann: string): void => {
        const val = a[ann] ?? child?.[k];
        if (val) v[k] = val;
      };
      pick('format', ANNOTATION_FORMAT);
      pick('paramSize', ANNOTATION_PARAM_SIZE);
      pick('quantization', ANNOTATION_QUANTIZATION);
      pick('precision', ANNOTATION_PRECISION);
      if (e.platform) v.platform = [e.platform.os, e.platform.architecture, e.platform.variant].filter(Boolean).join('/');
      if (child?.architecture && !facts.architecture) facts.architecture = child.architecture;
      size += v.size;
      variants.push(v);
    }
    const one = (k: 'format' | 'paramSize'): string | undefined => {
      const vals = [...new Set(variants.map((v) => v[k]))];
      return vals.length === 1 ? vals[0] : undefined;
    };
    const format = one('format');
    const paramSize = one('paramSize');
    if (format) facts.format = format;
    if (paramSize) facts.paramSize = paramSize;
    const quants = [...new Set(variants.map((v) => v.quantization).filter((q): q is string => !!q))];
    if (quants.length) facts.quantization = quants.join(',');
    facts.size = size;
    facts.variants = variants;
    return facts;
  } catch {
    return { kind: 'unreadable', mediaType: stored.mediaType, size: stored.bytes.length };
  }
}
