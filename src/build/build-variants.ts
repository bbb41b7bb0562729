/**
 * `mpk build --variants -t NAME:TAG DIR` and `mpk build -t NAME:TAG FILE FILE...`: several weight
 * files at once, one model per weight and an index of them (as `docker buildx build --platform
 * a,b` makes one image per platform and an index). A GGUF repository as Hugging Face hosts it
 * (`model-Q4_K_M.gguf`, `model-Q8_0.gguf`, …, a README and a LICENSE) becomes one variant per
 * quantization, each with the shared files (the same blobs, stored once).
 *
 * - DIR: each GGUF model (one file, or a split set `-0000N-of-0000M.gguf`) is a variant; every
 *   projector (`*mmproj*`) goes with each; the weights in other formats together make one more
 *   variant. Each variant's Modelfile is generated with the other variants' weights excluded, so
 *   its fields (quantization, precision, parameters) come from its own headers.
 * - FILE...: each file is packaged alone, as `mpk build -t REF FILE` does.
 * Each variant is tagged `TAG-<quantization>` (lower case; the file's stem where the headers name
 * none), as Ollama names its variants (`3b-instruct-q4_k_m`); NAME:TAG names the index. Building
 * again replaces the tags, as a build does.
 */
import { stat } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { PackError, fsError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { Index } from '../oci/manifest.js';
import { formatReference, parseReference, type Reference } from '../oci/reference.js';
import { precisionName } from '../graph/precision.js';
import { generateModelfile } from '../modelfile/generate.js';
import { variantEntry, variantIndex, writeIndex } from '../modelpack/variant-index.js';
import type { LocalStore } from '../store/store.js';
import { buildModel, type BuildOptions, type BuildResult } from './build-model.js';

/** Variants built at once at most (an index entry each; a pull reads the index, not the variants). */
export const MAX_BUILD_VARIANTS = 64;

export interface VariantsBuildOptions extends Omit<BuildOptions, 'contextDir' | 'modelfile'> {
  /** One directory (split into variants) or several model files (one variant each). */
  inputs: string[];
}

export interface VariantsBuildResult {
  reference: string;
  index: Descriptor;
  document: Index;
  variants: BuildResult[];
}

const SPLIT = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/i;

/** The weight paths of a directory grouped into variants (projectors returned apart). */
export function groupWeights(paths: string[]): { variants: string[][]; projectors: string[] } {
  const projectors = paths.filter((p) => /\.gguf$/i.test(p) && /mmproj/i.test(basename(p)));
  const gguf = new Map<string, string[]>();
  const other: string[] = [];
  for (const p of paths) {
    if (projectors.includes(p)) continue;
    if (!/\.gguf$/i.test(p)) {
      other.push(p);
      continue;
    }
    const key = SPLIT.exec(p)?.[1] ?? p;
    gguf.set(key, [...(gguf.get(key) ?? []), p]);
  }
  const variants = [...gguf.values()].map((g) => g.sort());
  if (other.length) variants.push(other);
  return { variants, projectors };
}

/** A path as a glob that matches only itself. */
const literal = (p: string) => p.replace(/[*?[\]{}()!+@\\]/g, '\\$&');

/** `TAG-<word>`, made a valid tag (≤ 128 characters of [A-Za-z0-9_.-], lower case). */
export function variantTag(tag: string, word: string): string {
  const w = word.toLowerCase().replace(/[^a-z0-9_.-]+/g, '-').replace(/^[.-]+|-+$/g, '');
  return `${tag}-${w || 'variant'}`.slice(0, 128);
}

export async function buildVariants(store: LocalStore, opts: VariantsBuildOptions): Promise<VariantsBuildResult> {
  const ref = parseReference(opts.reference);
  if (!ref.tag || ref.digest) throw new PackError('USAGE', `${opts.reference}: build needs NAME:TAG`, { hint: 'use -t NAME:TAG' });
  const kinds = await Promise.all(opts.inputs.map((p) => stat(p).then((s) => (s.isDirectory() ? 'dir' : s.isFile() ? 'file' : 'other'), (e) => Promise.reject(fsError(e, p)))));
  const plans: { contextDir: string; modelfile?: Awaited<ReturnType<typeof generateModelfile>>['modelfile']; stem: string }[] = [];
  if (kinds.length === 1 && kinds[0] === 'dir') {
    const dir = opts.inputs[0]!;
    const name = basename(ref.repository);
    const all = await generateModelfile(dir, { name });
    const weights = all.modelfile.model.map((e) => e.pattern);
    const { variants } = groupWeights(weights);
    if (variants.length < 2) {
      throw new PackError('USAGE', `${dir}: --variants needs two or more models (GGUF files or split sets); found ${variants.length}`, { hint: 'build it as one model: drop --variants' });
    }
    if (variants.length > MAX_BUILD_VARIANTS) throw new PackError('USAGE', `${dir}: ${variants.length} variants, over the limit of ${MAX_BUILD_VARIANTS}`);
    for (const v of variants) {
      const exclude = weights.filter((w) => !v.includes(w) && !(/mmproj/i.test(basename(w)) && /\.gguf$/i.test(w))).map(literal);
      const gen = await generateModelfile(dir, { name, exclude });
      for (const w of gen.warnings) opts.onWarning?.(w);
      plans.push({ contextDir: dir, modelfile: gen.modelfile, stem: basename(v[0]!, extname(v[0]!)).replace(SPLIT, '$1') });
    }
  } else {
    const bad = opts.inputs.find((_, i) => kinds[i] !== 'file');
    if (bad !== undefined) throw new PackError('USAGE', `${bad}: with several inputs each must be a model file`, { hint: 'give one directory with --variants, or model files' });
    if (opts.inputs.length > MAX_BUILD_VARIANTS) throw new PackError('USAGE', `${opts.inputs.length} files, over the limit of ${MAX_BUILD_VARIANTS} variants`);
    for (const f of opts.inputs) plans.push({ contextDir: f, stem: basename(f, extname(f)) });
  }

  const built: BuildResult[] = [];
  const tags = new Set<string>();
  for (const p of plans) {
    opts.signal?.throwIfAborted();
    // The quantization names the tag; the file's stem where the headers say none (or two say the same).
    const quant = p.modelfile ? (p.modelfile.quantization ?? precisionName(p.modelfile.precision)) : await quantizationOf(p.contextDir);
    let tag = variantTag(ref.tag, quant ?? p.stem);
    if (tags.has(tag)) tag = variantTag(ref.tag, p.stem);
    if (tags.has(tag)) throw new PackError('USAGE', `two variants would both be tagged ${tag}`, { hint: 'rename one of the files' });
    tags.add(tag);
    const variantRef = formatReference({ ...ref, tag } as Reference);
    built.push(await buildModel(store, { ...opts, contextDir: p.contextDir, reference: variantRef, ...(p.modelfile ? { modelfile: p.modelfile } : {}) }));
  }
  const entries: Descriptor[] = [];
  for (const b of built) entries.push(await variantEntry(store, { reference: b.reference }));
  const document = variantIndex(entries, opts.reference);
  const index = await writeIndex(store, opts.reference, document);
  return { reference: opts.reference, index, document, variants: built };
}

/** A single file's quantization, as a generated Modelfile gives it. */
async function quantizationOf(file: string): Promise<string | undefined> {
  const gen = await generateModelfile(file).catch(() => undefined);
  return gen?.modelfile.quantization ?? precisionName(gen?.modelfile.precision);
}
