/**
 * The first step of `mpk build`: from the build context (a directory, or one model file) and the
 * Modelfile (given, or generated in memory) to the files to package, each `stat`ed once, and what
 * their weights' headers say. A given Modelfile is taken as written: a FORMAT, PARAMSIZE,
 * PRECISION or QUANTIZATION that contradicts the weights is a warning naming both values, never
 * replaced, and fields it leaves out stay out (`mpk modelfile generate` fills them). The GGUF
 * header's metadata becomes a manifest annotation (ANNOTATION_GGUF_METADATA).
 */
import { stat } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { basename, dirname } from 'node:path';
import { PackError, fsError } from '../errors.js';
import type { WeightFile, WeightsDescription } from '../formats/inspect-weights.js';
import { canonicalJson } from '../oci/canonical-json.js';
import { ANNOTATION_GGUF_METADATA } from '../oci/media-types.js';
import { generateModelfile } from '../modelfile/generate.js';
import { contradictions } from '../modelfile/infer-fields.js';
import { resolvePatterns } from '../modelfile/resolve.js';
import { LIST_KIND, type ListKey, type Modelfile, type ResolvedFile } from '../modelfile/types.js';
import type { PlanFile } from './tar-group.js';

export interface PrepareOptions {
  /** A directory, or one file (its directory is then the context for a given Modelfile). */
  contextDir: string;
  modelfile?: Modelfile;
  /** NAME of a generated Modelfile. */
  name: string;
  describeWeights: (files: WeightFile[]) => Promise<WeightsDescription>;
  onWarning?: (message: string) => void;
}

export interface Prepared {
  modelfile: Modelfile;
  files: PlanFile[];
  /** undefined when nothing is a weight */
  weights?: WeightsDescription;
  /** Manifest annotations the weights give. */
  annotations: Record<string, string>;
}

export async function prepareBuild(opts: PrepareOptions): Promise<Prepared> {
  const ctx = await stat(opts.contextDir).catch((e) => {
    throw fsError(e, opts.contextDir, 'cannot read build context');
  });
  const single = ctx.isFile();
  const warn = (w: string) => opts.onWarning?.(w);
  let mf = opts.modelfile;
  let weights: WeightsDescription | undefined;
  let resolved: ResolvedFile[];
  if (!mf) {
    const gen = await generateModelfile(opts.contextDir, { name: opts.name, describeWeights: opts.describeWeights });
    gen.warnings.forEach(warn);
    mf = gen.modelfile;
    weights = gen.weights;
    // One file named on the command line is taken as it is, even as a link to elsewhere (a
    // Hugging Face cache snapshot links into its blobs): it is the file the user meant.
    resolved = single ? [{ kind: LIST_KIND[listOf(mf)], path: basename(opts.contextDir), absPath: opts.contextDir }] : await resolvePatterns(mf, opts.contextDir);
  } else {
    resolved = await resolvePatterns(mf, single ? dirname(opts.contextDir) : opts.contextDir);
  }
  const files = await Promise.all(resolved.map(async (f): Promise<PlanFile> => ({ ...f, stats: await statFile(f.absPath) })));
  if (opts.modelfile) {
    const weightFiles = files.filter((f) => f.kind === 'weight').map((f) => ({ path: f.path, absPath: f.absPath, size: Number(f.stats.size) }));
    if (weightFiles.length > 0) {
      weights = await opts.describeWeights(weightFiles);
      weights.warnings.forEach(warn);
      contradictions(mf, weights, (kw, v) => `${mf!.file}: ${kw} ${v}`).forEach(warn);
    }
  }
  const annotations: Record<string, string> = {};
  if (weights?.ggufMetadata) annotations[ANNOTATION_GGUF_METADATA] = canonicalJson(weights.ggufMetadata);
  return weights ? { modelfile: mf, files, weights, annotations } : { modelfile: mf, files, annotations };
}

/** The list a generated one-file Modelfile put its file in. */
function listOf(mf: Modelfile): ListKey {
  const key = (Object.keys(LIST_KIND) as ListKey[]).find((k) => mf[k].length > 0);
  if (!key) throw new PackError('EMPTY_BUILD', `${mf.file}: lists no files`, { hint: 'give a model file, or the directory that holds the model' });
  return key;
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
