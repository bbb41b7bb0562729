/**
 * `mpk export ollama REF NAME[:TAG]`: writes a model from the store into an Ollama models
 * directory, where `ollama run NAME` finds it.
 *
 * - An imported or pulled Ollama model goes back byte for byte: the same manifest, the same blobs.
 * - A ModelPack or Docker Model Runner model with one GGUF weight is converted: a Docker v2
 *   manifest whose `vnd.ollama.image.model` layer is the GGUF blob itself (same digest), plus
 *   projector, license and (from an Ollama origin) template/system/params/messages layers, and a
 *   new ConfigV2 blob. Jinja chat templates are left out: Ollama templates are Go templates, and
 *   Ollama reads the chat template inside the GGUF.
 *
 * Blobs are hard links to the store's (no second copy; a copy, verified, across file systems);
 * the manifest is written last, by temp file and rename. An existing different manifest for NAME
 * is refused unless `force`.
 */
import type { Stats } from 'node:fs';
import { lstat, mkdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { PackError, fsError, hasErrorCode } from '../errors.js';
import { openRegularFile, readAt, readSmallFile } from '../internal/file-read.js';
import type { Descriptor } from '../oci/descriptor.js';
import { digestBytes } from '../oci/digest.js';
import type { ModelFile } from '../modelpack/model-view.js';
import type { LocalStore } from '../store/store.js';
import { CNCF_WEIGHT_GGUF, DOCKER_AI_GGUF, DOCKER_AI_LICENSE, DOCKER_AI_MMPROJ } from './docker-ai.js';
import type { TransferredBlob } from './import-ollama.js';
import { copyVerified, tryLink, verifyFile } from './link-blob.js';
import { loadModel, type LoadedModel } from './load-model.js';
import {
  OLLAMA_ADAPTER,
  OLLAMA_CONFIG,
  OLLAMA_LICENSE,
  OLLAMA_MESSAGES,
  OLLAMA_MODEL,
  OLLAMA_PARAMS,
  OLLAMA_PROJECTOR,
  OLLAMA_SYSTEM,
  OLLAMA_TEMPLATE,
  buildOllamaConfig,
  ollamaJsonBytes,
  ollamaManifestBytes,
  ollamaMediaTypeForName,
} from './ollama.js';
import { blobFile, formatOllamaName, legacyManifestPath, parseOllamaName, v2ManifestPath } from './ollama-dir.js';

export interface ExportOllamaOptions {
  modelsDir: string;
  /** Replace an existing, different manifest of the same name. */
  force?: boolean;
  signal?: AbortSignal;
}

export interface ExportOllamaResult {
  name: string;
  manifestPath: string;
  /** sha256 of the manifest bytes: the ID `ollama list` shows. */
  digest: string;
  /** True when a new manifest and config were made (ModelPack or DMR source). */
  converted: boolean;
  blobs: TransferredBlob[];
  warnings: string[];
}

/** Ollama's layer order: weights, then the small layers. */
const RANK = [OLLAMA_MODEL, OLLAMA_PROJECTOR, OLLAMA_ADAPTER, OLLAMA_TEMPLATE, OLLAMA_SYSTEM, OLLAMA_PARAMS, OLLAMA_MESSAGES, OLLAMA_LICENSE];

export async function exportOllama(store: LocalStore, reference: string, nameText: string, opts: ExportOllamaOptions): Promise<ExportOllamaResult> {
  const name = parseOllamaName(nameText);
  const model = await loadModel(store, reference);
  const warnings: string[] = [];
  let manifestBytes: Buffer;
  let fromStore: Descriptor[];
  let config: { desc: Descriptor; bytes: Buffer } | undefined;
  if (model.view.format === 'ollama') {
    manifestBytes = model.manifestBytes; // the same bytes, so the same model ID
    fromStore = [model.manifest.config, ...model.manifest.layers];
  } else {
    const layers = await ollamaLayers(store, model, warnings);
    const configBytes = ollamaJsonBytes(
      buildOllamaConfig({ family: model.meta.architecture ?? model.meta.family, paramSize: model.meta.paramSize, quantization: model.meta.quantization, diffIds: layers.map((l) => l.digest) }),
    );
    config = { desc: { mediaType: OLLAMA_CONFIG, digest: digestBytes(configBytes), size: configBytes.length }, bytes: configBytes };
    manifestBytes = ollamaManifestBytes(config.desc, layers);
    fromStore = layers;
  }

  const target = legacyManifestPath(opts.modelsDir, name);
  const v2 = v2ManifestPath(opts.modelsDir, name);
  const sameAsTarget = await conflicts(target, manifestBytes, !!opts.force, formatOllamaName(name));
  let v2Stale = !(await conflicts(v2, manifestBytes, !!opts.force, formatOllamaName(name))) && (await exists(v2));
  if (v2Stale && !opts.force) {
    warnings.push(`${v2} is a broken link and a newer Ollama looks there first: remove it, or export again with --force`);
    v2Stale = false;
  }

  const blobs: TransferredBlob[] = [];
  const seen = new Set<string>();
  let copied = 0;
  for (const d of fromStore) {
    if (seen.has(d.digest)) continue;
    seen.add(d.digest);
    opts.signal?.throwIfAborted();
    const how = await placeBlob(store, d, blobFile(opts.modelsDir, d.digest), opts.signal);
    if (how === 'copied') copied++;
    blobs.push({ digest: d.digest, size: d.size, how });
  }
  if (config) {
    const dest = blobFile(opts.modelsDir, config.desc.digest);
    const present = (await fileState(dest, config.bytes)) === 'same';
    if (!present) await writeAtomic(dest, config.bytes);
    blobs.push({ digest: config.desc.digest, size: config.desc.size, how: present ? 'present' : 'copied' });
  }
  if (copied > 0) warnings.push(`${copied} blob${copied === 1 ? ' was' : 's were'} copied, not hard-linked (the store is on another file system)`);
  if (!sameAsTarget) await writeAtomic(target, manifestBytes);
  if (v2Stale) {
    // A newer Ollama reads manifests-v2 first: with --force the old entry goes so ours is found.
    await unlink(v2).catch((e) => {
      throw fsError(e, v2, 'cannot remove');
    });
    warnings.push(`removed ${v2}, which named a different model`);
  }
  return {
    name: `${name.host}/${name.namespace}/${name.model}:${name.tag}`,
    manifestPath: target,
    digest: digestBytes(manifestBytes),
    converted: config !== undefined,
    blobs,
    warnings,
  };
}

/** The Ollama layers of a ModelPack or DMR model: its one GGUF weight and the files Ollama knows. */
async function ollamaLayers(store: LocalStore, model: LoadedModel, warnings: string[]): Promise<Descriptor[]> {
  const picked: { rank: number; layer: Descriptor }[] = [];
  const models: ModelFile[] = [];
  const left: string[] = [];
  for (const f of model.view.files) {
    const layer = (mediaType: string) => picked.push({ rank: RANK.indexOf(mediaType), layer: { mediaType, digest: f.layer.digest, size: f.layer.size } });
    const name = basename(f.path).toLowerCase();
    const own = ollamaMediaTypeForName(f.path); // files named as mpk names Ollama layers
    if (f.encoding !== 'raw') {
      left.push(`${f.path}/`);
    } else if (f.kind === 'weight' && (name.endsWith('.gguf') || [DOCKER_AI_GGUF, DOCKER_AI_MMPROJ, CNCF_WEIGHT_GGUF].includes(f.layer.mediaType))) {
      await checkGguf(store, f);
      if (f.layer.mediaType === DOCKER_AI_MMPROJ || name.includes('mmproj') || own === OLLAMA_PROJECTOR) layer(OLLAMA_PROJECTOR);
      else if (own === OLLAMA_ADAPTER) layer(OLLAMA_ADAPTER);
      else models.push(f);
    } else if (own && [OLLAMA_TEMPLATE, OLLAMA_SYSTEM, OLLAMA_PARAMS, OLLAMA_MESSAGES, OLLAMA_LICENSE].includes(own)) {
      layer(own);
    } else if (f.layer.mediaType === DOCKER_AI_LICENSE || ((f.kind === 'doc' || f.kind === 'config') && /licen[cs]e|copying|notice/.test(name))) {
      layer(OLLAMA_LICENSE);
    } else {
      left.push(f.path);
    }
  }
  if (models.length === 0) {
    throw new PackError('UNSUPPORTED', `${model.reference}: has no GGUF weight, and Ollama runs GGUF models`, {
      hint: 'build the model from a .gguf file (llama.cpp convert_hf_to_gguf.py makes one from safetensors)',
    });
  }
  if (models.length > 1) {
    throw new PackError('UNSUPPORTED', `${model.reference}: has ${models.length} GGUF weights (${models.map((f) => f.path).join(', ')}), and an Ollama model has one`, {
      hint: 'merge shards with llama-gguf-split --merge, or build a model with one of them',
    });
  }
  const main = models[0]!;
  picked.push({ rank: 0, layer: { mediaType: OLLAMA_MODEL, digest: main.layer.digest, size: main.layer.size } });
  if (left.length > 0) {
    const list = left.slice(0, 5).join(', ') + (left.length > 5 ? `, and ${left.length - 5} more` : '');
    warnings.push(`left out ${left.length} file${left.length === 1 ? '' : 's'} Ollama has no layer for (${list}); Ollama uses the chat template inside the GGUF`);
  }
  return picked.sort((a, b) => a.rank - b.rank).map((p) => p.layer);
}

/** A weight named .gguf must start with the GGUF magic: Ollama refuses anything else. */
async function checkGguf(store: LocalStore, f: ModelFile): Promise<void> {
  const path = store.blobs.path(f.layer.digest);
  const { fh } = await openRegularFile(path);
  try {
    const buf = await readAt(fh, path, 0, 4);
    if (buf.length < 4 || buf.toString('latin1') !== 'GGUF') {
      throw new PackError('UNSUPPORTED', `${f.path}: is not a GGUF file (no GGUF magic), so Ollama cannot load it`, { hint: 'check the file; Ollama runs GGUF models only' });
    }
  } finally {
    await fh.close();
  }
}

/** True when `path` already holds these bytes; ALREADY_EXISTS when it holds others (unless force). */
async function conflicts(path: string, bytes: Buffer, force: boolean, display: string): Promise<boolean> {
  const state = await fileState(path, bytes);
  if (state !== 'different') return state === 'same';
  if (!force) {
    throw new PackError('ALREADY_EXISTS', `${display}: Ollama already has a different model of that name (${path})`, {
      hint: 'choose another NAME:TAG, or add --force to replace it (its blobs stay until Ollama prunes them)',
    });
  }
  return false;
}

/**
 * Whether `path` (links followed) is a regular file holding exactly `bytes`: read only when its size
 * is theirs, never past it, without blocking on a FIFO.
 */
async function fileState(path: string, bytes: Buffer): Promise<'absent' | 'same' | 'different'> {
  let st: Stats;
  try {
    st = await stat(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return 'absent';
    throw fsError(e, path);
  }
  if (!st.isFile() || st.size !== bytes.length) return 'different';
  const now = await readSmallFile(path, bytes.length, { label: 'file', sizeHint: 'it changed while being read: try again' });
  return now.equals(bytes) ? 'same' : 'different';
}

/**
 * Puts a store blob at dest by a hard link (or verified copy) and rename, unless dest already
 * holds it: the store's own file (same inode), or a file of its size whose digest checks out (a
 * file of the right size is not trusted on its size alone: Ollama would load whatever it holds).
 */
async function placeBlob(store: LocalStore, d: Descriptor, dest: string, signal?: AbortSignal): Promise<TransferredBlob['how']> {
  const src = store.blobs.path(d.digest);
  if (await holdsBlob(dest, src, d, signal)) return 'present';
  await mkdir(dirname(dest), { recursive: true });
  const tmp = tempName(dest);
  try {
    await store.blobs.verify(d); // a link hands Ollama the store's bytes: check them first
    if (await tryLink(src, tmp)) {
      await rename(tmp, dest);
      return 'linked';
    }
    await copyVerified(src, tmp, d, 0o644, signal);
    await rename(tmp, dest);
    return 'copied';
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw fsError(e, dest, 'cannot write');
  }
}

/** dest is a regular file of d's size that is the store's own file, or whose bytes hash to d. */
async function holdsBlob(dest: string, src: string, d: Descriptor, signal?: AbortSignal): Promise<boolean> {
  const [a, b] = await Promise.all([lstat(dest).catch(() => undefined), stat(src).catch(() => undefined)]);
  if (!a?.isFile() || a.size !== d.size) return false;
  if (b && a.ino === b.ino && a.dev === b.dev) return true;
  try {
    await verifyFile(dest, d, signal);
    return true;
  } catch (e) {
    if (hasErrorCode(e, 'DIGEST_MISMATCH') || hasErrorCode(e, 'SIZE_MISMATCH')) return false;
    throw fsError(e, dest, 'cannot read');
  }
}

async function writeAtomic(path: string, bytes: Buffer): Promise<void> {
  const tmp = tempName(path);
  try {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(tmp, bytes, { flag: 'wx', mode: 0o644 });
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw fsError(e, path, 'cannot write');
  }
}

function tempName(path: string): string {
  return `${dirname(path)}/.${basename(path)}.mpk-${process.pid}-${Math.random().toString(36).slice(2, 10)}.tmp`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}
