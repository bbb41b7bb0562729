/**
 * What each GGUF weight of a model is for: the model (one file, or the shards of one split set),
 * a LoRA adapter, a multimodal projector — by Ollama's and Docker Model Runner's media types where
 * they say it, else by the GGUF header (`general.type`, `general.architecture`, `split.*`), as
 * llama.cpp itself tells them apart.
 */
import { open } from 'node:fs/promises';
import { PackError } from '../errors.js';
import { readGgufHeader, type GgufHeader } from '../formats/gguf.js';
import { DOCKER_AI_MMPROJ } from '../interop/docker-ai.js';
import type { LoadedModel } from '../interop/load-model.js';
import { OLLAMA_ADAPTER, OLLAMA_PREFIX, OLLAMA_PROJECTOR } from '../interop/ollama.js';

const OLLAMA_DRAFT = `${OLLAMA_PREFIX}draft`;
import type { ModelFile } from '../modelpack/model-view.js';
import type { LocalStore } from '../store/store.js';

export interface GgufFile {
  file: ModelFile;
  header: GgufHeader;
}

export interface GgufRoles {
  /** The model: one file, or every shard in split.no order. */
  main?: GgufFile[];
  adapters: GgufFile[];
  projector?: GgufFile;
  unused: Array<GgufFile & { why: string }>;
}

/** Headers are read from the blobs in place; a layer missing from the store is NOT_FOUND. */
export async function classifyGgufFiles(store: LocalStore, model: LoadedModel, weight?: string): Promise<GgufRoles> {
  const roles: GgufRoles = { adapters: [], unused: [] };
  const models: GgufFile[] = [];
  const shards = new Map<string, GgufFile[]>();
  for (const file of model.view.files) {
    if (file.kind !== 'weight' || file.encoding !== 'raw') continue;
    if (!(await store.exists(file.layer))) {
      throw new PackError('NOT_FOUND', `${model.reference}: ${file.path} (${file.layer.digest}) is not in the store`, { hint: `pull the model again: mpk pull ${model.reference}` });
    }
    const header = await ggufHeader(store.blobs.path(file.layer.digest));
    if (!header) continue;
    const g: GgufFile = { file, header };
    const media = file.layer.mediaType.split(';')[0]!.trim();
    const type = str(header, 'general.type');
    const arch = str(header, 'general.architecture');
    if (media === OLLAMA_DRAFT) roles.unused.push({ ...g, why: 'a draft model for speculative decoding' });
    else if (media === OLLAMA_ADAPTER || type === 'adapter') roles.adapters.push(g);
    else if (media === OLLAMA_PROJECTOR || media === DOCKER_AI_MMPROJ || type === 'mmproj' || arch === 'clip' || /(^|\/)mmproj[^/]*$/i.test(file.path)) {
      if (roles.projector) roles.unused.push({ ...g, why: 'a second projector' });
      else roles.projector = g;
    } else if (num(header, 'split.count') > 1) {
      // only the first shard has the model's keys: group by what every shard carries, and the
      // file-name prefix llama.cpp itself uses, so two split models of one shape stay apart
      const prefix = /^(.*)-\d{5}-of-\d{5}\.gguf$/i.exec(file.path)?.[1] ?? '';
      const key = `${prefix}\0${num(header, 'split.count')}\0${num(header, 'split.tensors.count')}`;
      shards.set(key, [...(shards.get(key) ?? []), g]);
    } else models.push(g);
  }
  for (const set of shards.values()) models.push(...completeSet(model.reference, set));
  const sets = groupSets(models);
  // the first model is the manifest's first, whether one file or a split set
  const at = (set: GgufFile[]) => Math.min(...set.map((g) => model.view.files.indexOf(g.file)));
  sets.sort((a, b) => at(a) - at(b));
  const chosen = weight === undefined ? sets[0] : sets.find((s) => s.some((g) => g.file.path === weight));
  if (weight !== undefined && !chosen) {
    throw new PackError('NOT_FOUND', `${model.reference}: has no GGUF model file ${weight}`, { hint: `its GGUF models: ${sets.map((s) => s[0]!.file.path).join(', ') || 'none'}` });
  }
  if (chosen) roles.main = chosen;
  for (const s of sets) if (s !== chosen) roles.unused.push(...s.map((g) => ({ ...g, why: `another model file; choose it with --weight ${s[0]!.file.path}` })));
  return roles;
}

/** Single files stay alone; shards of one set (consecutive after completeSet) stay together. */
function groupSets(files: GgufFile[]): GgufFile[][] {
  const sets: GgufFile[][] = [];
  for (const g of files) {
    const count = num(g.header, 'split.count');
    const last = sets[sets.length - 1];
    if (count > 1 && last && num(last[0]!.header, 'split.count') === count && last.length < count) last.push(g);
    else sets.push([g]);
  }
  return sets;
}

/** The shards of one split set in split.no order; every number from 0 to count-1 present once. */
function completeSet(reference: string, set: GgufFile[]): GgufFile[] {
  const count = num(set[0]!.header, 'split.count');
  const sorted = [...set].sort((a, b) => num(a.header, 'split.no') - num(b.header, 'split.no'));
  const ok = sorted.length === count && sorted.every((g, i) => num(g.header, 'split.no') === i);
  if (!ok) {
    throw new PackError('INVALID_MANIFEST', `${reference}: a GGUF split set of ${count} files has ${sorted.length} (${sorted.map((g) => g.file.path).join(', ')})`, {
      hint: 'rebuild the model with every shard',
    });
  }
  return sorted;
}

/** The header, or undefined when the blob is not a GGUF file (by its magic). */
async function ggufHeader(path: string): Promise<GgufHeader | undefined> {
  const fh = await open(path, 'r');
  try {
    const { bytesRead, buffer } = await fh.read(Buffer.alloc(4), 0, 4, 0);
    if (bytesRead < 4 || buffer.toString('latin1') !== 'GGUF') return undefined;
  } finally {
    await fh.close();
  }
  return readGgufHeader(path);
}

function str(h: GgufHeader, key: string): string | undefined {
  const v = h.metadata.get(key)?.value;
  return typeof v === 'string' ? v : undefined;
}

function num(h: GgufHeader, key: string): number {
  const v = h.metadata.get(key)?.value;
  return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : 0;
}
