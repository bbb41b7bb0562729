/**
 * A stored model made ready for an engine, without extracting or copying anything: the weight's
 * blob path (a sharded GGUF through links named as llama.cpp expects), LoRA adapters and a
 * multimodal projector where the model has them, and the model's own runtime settings (Docker
 * Model Runner's context size and chat template; Ollama's params, system and template layers).
 */
import { PackError } from '../errors.js';
import { ENGINES_FOR_FORMAT } from '../engine/engines.js';
import { chooseNested, manifestMatchesVariant, type Selection } from '../graph/select.js';
import { loadModel, type LoadedModel } from '../interop/load-model.js';
import { MAX_MANIFEST_BYTES } from '../oci/manifest.js';
import type { LoadOptions } from '../engine/engine.js';
import type { LocalStore } from '../store/store.js';
import { classifyGgufFiles, type GgufRoles } from './gguf-roles.js';
import { modelSettings, type RunSettings } from './settings.js';
import { shardLinks } from './shard-links.js';

export type { RunSettings } from './settings.js';

export interface Runnable {
  /** The reference as given. */
  reference: string;
  /** The manifest's digest. */
  digest: string;
  format: 'gguf';
  /** What the engine loads (threads, parallel and the signal are the caller's). */
  load: Omit<LoadOptions, 'threads' | 'signal' | 'parallel'>;
  /** The model's own runtime defaults; flags and request fields override them. */
  defaults: RunSettings;
  /** Bytes of the weights, adapters and projector (what loading maps). */
  weightBytes: number;
  /** Things worth telling the user (an extra GGUF left unused, ...). */
  notes: string[];
}

export interface RunnableOptions {
  /** From an index: which variant (as `mpk pull --variant/--platform`). */
  select?: Selection;
  /** Of several GGUF models in one artifact, the one at this path (default: the first). */
  weight?: string;
}

export async function resolveRunnable(store: LocalStore, reference: string, opts: RunnableOptions = {}): Promise<Runnable> {
  const { model, reason } = await loadStored(store, reference, opts.select ?? {});
  const roles = await classifyGgufFiles(store, model, opts.weight);
  if (!roles.main) throw notRunnable(reference, model);
  const mainPath = roles.main.length > 1 ? await shardLinks(store, roles.main) : store.blobs.path(roles.main[0]!.file.layer.digest);
  const load: Runnable['load'] = { path: mainPath };
  const defaults = await modelSettings(store, model);
  if (defaults.chatFormat) load.chatFormat = defaults.chatFormat;
  if (defaults.contextSize) load.contextSize = defaults.contextSize;
  if (roles.adapters.length) load.adapters = roles.adapters.map((a) => ({ path: store.blobs.path(a.file.layer.digest) }));
  if (roles.projector) load.projector = store.blobs.path(roles.projector.file.layer.digest);
  const used = [...roles.main, ...roles.adapters, ...(roles.projector ? [roles.projector] : [])];
  return {
    reference,
    digest: model.descriptor.digest,
    format: 'gguf',
    load,
    defaults,
    weightBytes: used.reduce((n, g) => n + g.file.layer.size, 0),
    notes: [...(reason ? [reason] : []), ...roles.unused.map((g) => `${g.file.path} is not used (${g.why})`)],
  };
}

/** A stored manifest read as a model; from an index, the selected (or only, or best fitting) variant and why. */
async function loadStored(store: LocalStore, reference: string, select: Selection): Promise<{ model: LoadedModel; reason?: string }> {
  const desc = await store.resolve(reference);
  const parsed = await store.readManifest(desc);
  if (parsed.kind === 'manifest') {
    // a pull from an index stores the variant it chose under the name: --variant must describe it
    if (select.platform) throw new PackError('USAGE', `${reference}: is one model, not an index of variants`, { hint: 'drop --platform, or name the index' });
    const model = await loadModel(store, reference);
    if (select.variant) {
      const c = model.manifest.config;
      const config = c.size <= 1024 * 1024 && (await store.exists(c)) ? await store.blobs.read(c, 1024 * 1024) : undefined;
      if (!manifestMatchesVariant(model.manifest, config, select.variant)) {
        throw new PackError('USAGE', `${reference}: is one model, not an index, and it is not ${select.variant}`, { hint: 'drop --variant, or name an index that holds that variant' });
      }
    }
    return { model };
  }
  const choice = await chooseNested(parsed.index, select, reference, (d) => store.blobs.read(d, MAX_MANIFEST_BYTES));
  const chosen = choice.descriptor;
  if (!(await store.exists(chosen))) {
    throw new PackError('NOT_FOUND', `${reference}: variant ${chosen.digest} is not in the store`, { hint: `pull it: mpk pull ${reference}${select.variant ? ` --variant ${select.variant}` : ''}` });
  }
  const name = reference.replace(/@.*$/, '').replace(/:[^/:]*$/, '');
  const model = await loadModel(store, `${name}@${chosen.digest}`);
  return choice.reason ? { model, reason: choice.reason } : { model };
}

function notRunnable(reference: string, model: LoadedModel): PackError {
  const weights = model.view.files.filter((f) => f.kind === 'weight');
  const format = (model.meta.format ?? guessFormat(weights.map((f) => f.path)) ?? 'unknown').toLowerCase();
  const engines = ENGINES_FOR_FORMAT[format];
  const extract = `mpk extract ${reference} ./model`;
  if (engines) {
    return new PackError('UNSUPPORTED', `${reference}: is a ${format} model; mpk run's engine (llama.cpp) runs GGUF only`, {
      hint: `run it with ${engines}: ${extract} prepares a directory for them`,
    });
  }
  return new PackError('UNSUPPORTED', `${reference}: has no GGUF weight for llama.cpp (format ${format})`, {
    hint: `${extract} restores its files for another engine`,
  });
}

function guessFormat(paths: string[]): string | undefined {
  if (paths.some((p) => /\.safetensors$/i.test(p))) return 'safetensors';
  if (paths.some((p) => /\.onnx$/i.test(p))) return 'onnx';
  return undefined;
}

export type { GgufRoles };
