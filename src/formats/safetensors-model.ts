/**
 * A safetensors model on disk: one `.safetensors` file, or shards joined by an index
 * (`model.safetensors.index.json`: `weight_map` tensor → shard file, `metadata.total_size`). Every
 * shard's header is read and checked (safetensors.ts), every tensor of `weight_map` must be in the
 * shard it names, and shard names never leave the index's directory.
 */
import type { Stats } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { PackError, fsError } from '../errors.js';
import { readSmallFile } from '../internal/file-read.js';
import { mapBounded } from '../internal/map-bounded.js';
import { safeRelativePath } from '../internal/safe-path.js';
import { parseJsonObject, quoteName, readSafetensorsHeader, type SafetensorsHeader } from './safetensors.js';
import { describeSafetensors, type SafetensorsDescription } from './safetensors-describe.js';

/** The largest `model.safetensors.index.json` read (real ones are well under 1 MiB). */
export const SAFETENSORS_MAX_INDEX_BYTES = 64 * 1024 * 1024;
/** The conventional name of a sharded model's index. */
export const SAFETENSORS_INDEX_NAME = 'model.safetensors.index.json';

export interface SafetensorsModel {
  /** The index, for a sharded model. */
  indexPath?: string;
  /** The safetensors files read, in name order (shards as the index names them, joined to its directory). */
  files: string[];
  headers: SafetensorsHeader[];
  description: SafetensorsDescription;
  /** The index's `metadata.total_size`, when it has one. */
  totalSize?: number;
  /** Inconsistencies that do not stop the model from loading (total_size, tensors the index leaves out). */
  warnings: string[];
}

/**
 * Reads a model: a `.safetensors` file, a `*.safetensors.index.json`, or a directory holding
 * `model.safetensors.index.json` (or one other `*.safetensors.index.json`), else
 * `model.safetensors` (or its only `*.safetensors` file). For an index every shard's header is
 * read, and every tensor of `weight_map` must be in the shard it names.
 */
export async function readSafetensorsModel(path: string): Promise<SafetensorsModel> {
  let st: Stats;
  try {
    st = await stat(path);
  } catch (e) {
    throw fsError(e, path);
  }
  let target = path;
  if (st.isDirectory()) target = await pickModelFile(path);
  if (basename(target).toLowerCase().endsWith('.json')) return readIndexedModel(target);
  const header = await readSafetensorsHeader(target);
  return { files: [target], headers: [header], description: describeSafetensors([header]), warnings: [] };
}

async function pickModelFile(dir: string): Promise<string> {
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (e) {
    throw fsError(e, dir);
  }
  const indexes = names.filter((n) => n.endsWith('.safetensors.index.json'));
  const files = names.filter((n) => n.endsWith('.safetensors'));
  if (indexes.includes(SAFETENSORS_INDEX_NAME)) return join(dir, SAFETENSORS_INDEX_NAME);
  if (indexes.length === 1) return join(dir, indexes[0]!);
  if (indexes.length > 1) {
    throw new PackError('USAGE', `${dir}: several safetensors indexes (${indexes.join(', ')})`, { hint: 'give the index of the model you mean' });
  }
  if (files.includes('model.safetensors')) return join(dir, 'model.safetensors');
  if (files.length === 1) return join(dir, files[0]!);
  if (files.length > 1) {
    throw new PackError('USAGE', `${dir}: several .safetensors files and no ${SAFETENSORS_INDEX_NAME}`, {
      hint: 'give one file, or the index that joins them',
    });
  }
  throw new PackError('NOT_FOUND', `${dir}: no ${SAFETENSORS_INDEX_NAME} and no .safetensors file`, { hint: 'give the directory of a safetensors model' });
}


function corruptIndex(path: string, why: string, cause?: unknown): PackError {
  return new PackError('CORRUPT', `${path}: not a valid safetensors index: ${why}`, {
    cause,
    hint: 'download or export the index again, from the same revision as its shards',
  });
}

interface ParsedIndex {
  /** tensor → shard (a safe relative path) */
  shardOf: Map<string, string>;
  /** The shards, sorted. */
  shards: string[];
  totalSize?: number;
  warnings: string[];
}

async function readIndexedModel(indexPath: string): Promise<SafetensorsModel> {
  const bytes = await readSmallFile(indexPath, SAFETENSORS_MAX_INDEX_BYTES, {
    label: 'index',
    sizeHint: 'real indexes are well under 1 MiB: download the index again, or give the shard files themselves',
  });
  const { shardOf, shards: relFiles, totalSize, warnings } = parseIndex(indexPath, bytes);
  const dir = dirname(indexPath);
  const files = relFiles.map((rel) => join(dir, rel));
  const headers = await mapBounded(relFiles, (rel, i) => readShard(indexPath, rel, files[i]!), 4);
  checkWeightMap(indexPath, shardOf, relFiles, headers);
  const counted = countOnce(indexPath, shardOf, relFiles, headers, warnings);
  const description = describeSafetensors(counted);
  if (totalSize !== undefined && totalSize !== description.tensorBytes) {
    warnings.push(`${indexPath}: metadata.total_size is ${totalSize} but the shards' tensors hold ${description.tensorBytes} bytes`);
  }
  const out: SafetensorsModel = { indexPath, files, headers, description, warnings };
  if (totalSize !== undefined) out.totalSize = totalSize;
  return out;
}

/** weight_map (every shard name checked before any file is opened) and metadata.total_size. */
function parseIndex(indexPath: string, bytes: Uint8Array): ParsedIndex {
  const json = parseJsonObject(bytes, (why, cause) => corruptIndex(indexPath, why, cause));
  const { weight_map: weightMap, metadata } = json;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw corruptIndex(indexPath, 'weight_map is missing or not a JSON object');
  }
  const entries = Object.entries(weightMap as Record<string, unknown>);
  if (entries.length === 0) throw corruptIndex(indexPath, 'weight_map names no tensor');

  const shardOf = new Map<string, string>();
  const shards = new Set<string>();
  for (const [tensor, file] of entries) {
    if (typeof file !== 'string') throw corruptIndex(indexPath, `weight_map[${quoteName(tensor)}] is not a file name`);
    let rel: string;
    try {
      rel = safeRelativePath(file, `${indexPath}: weight_map[${quoteName(tensor)}]`);
    } catch (e) {
      throw new PackError('UNSAFE_PATH', (e as Error).message, {
        cause: e,
        hint: 'an index may only name files in its own directory or below; nothing outside it was read',
      });
    }
    shardOf.set(tensor, rel);
    shards.add(rel);
  }

  const warnings: string[] = [];
  const out: ParsedIndex = { shardOf, shards: [...shards].sort(), warnings };
  if (metadata !== undefined && metadata !== null) {
    const ts = typeof metadata === 'object' ? (metadata as Record<string, unknown>).total_size : undefined;
    if (typeof metadata !== 'object' || Array.isArray(metadata)) warnings.push(`${indexPath}: metadata is not a JSON object; ignored`);
    else if (ts !== undefined) {
      const n = typeof ts === 'string' && /^\d+$/.test(ts) ? Number(ts) : ts;
      if (typeof n === 'number' && Number.isSafeInteger(n) && n >= 0) out.totalSize = n;
      else warnings.push(`${indexPath}: metadata.total_size is not a byte count; not checked`);
    }
  }
  return out;
}

/** One shard's header; a missing shard is NOT_FOUND naming the index. */
async function readShard(indexPath: string, rel: string, file: string): Promise<SafetensorsHeader> {
  try {
    return await readSafetensorsHeader(file);
  } catch (e) {
    if (e instanceof PackError && e.code === 'NOT_FOUND') {
      throw new PackError('NOT_FOUND', `${indexPath}: weight_map names shard ${quoteName(rel)}, which does not exist`, {
        cause: e,
        hint: 'download the missing shard, or use the index that belongs with these shards',
      });
    }
    throw e;
  }
}

/** Every tensor of weight_map must be in the shard it names. */
function checkWeightMap(indexPath: string, shardOf: Map<string, string>, relFiles: string[], headers: SafetensorsHeader[]): void {
  const held = new Map<string, Set<string>>(relFiles.map((rel, i) => [rel, new Set(headers[i]!.tensors.map((t) => t.name))]));
  const missing = [...shardOf].filter(([tensor, rel]) => !held.get(rel)!.has(tensor));
  if (missing.length > 0) {
    const [tensor, rel] = missing[0]!;
    const more = missing.length > 1 ? ` (and ${missing.length - 1} more tensor(s) of weight_map are missing)` : '';
    throw new PackError('CORRUPT', `${indexPath}: weight_map puts tensor ${quoteName(tensor)} in ${quoteName(rel)}, which does not hold it${more}`, {
      hint: 'the index and the shards do not belong together: download both again from the same revision',
    });
  }
}

/**
 * The headers to count: tensors the index does not name are still in the files (and counted); one
 * that is in several shards is counted once, where weight_map puts it. Both are warnings.
 */
function countOnce(indexPath: string, shardOf: Map<string, string>, relFiles: string[], headers: SafetensorsHeader[], warnings: string[]): SafetensorsHeader[] {
  const seen = new Set<string>();
  const unnamed: string[] = [];
  const duplicated: string[] = [];
  const counted = headers.map((h, i) => {
    const rel = relFiles[i]!;
    const tensors = h.tensors.filter((t) => {
      const named = shardOf.get(t.name);
      if (named === undefined) {
        if (seen.has(t.name)) {
          duplicated.push(t.name);
          return false;
        }
        unnamed.push(t.name);
      } else if (named !== rel) {
        duplicated.push(t.name);
        return false;
      }
      seen.add(t.name);
      return true;
    });
    return tensors.length === h.tensors.length ? h : { ...h, tensors };
  });
  if (unnamed.length > 0) {
    warnings.push(`${indexPath}: ${unnamed.length} tensor(s) in the shards are not in weight_map (first ${quoteName(unnamed[0]!)}); counted`);
  }
  if (duplicated.length > 0) {
    warnings.push(`${indexPath}: ${duplicated.length} tensor(s) appear in more than one shard (first ${quoteName(duplicated[0]!)}); counted once`);
  }
  return counted;
}
