/**
 * The build's JSON caches under `<store>/cache/` (digests.json, weights.json): entries kept in
 * recency order (a Map's insertion order), merged on save with what other builds wrote meanwhile,
 * trimmed to a maximum (oldest first), written by temp file + rename so a reader never sees half.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export async function saveMerged<V>(
  file: string,
  mine: ReadonlyMap<string, V>,
  maxEntries: number,
  read: (file: string) => Promise<Map<string, V>>,
  encode: (entries: Map<string, V>) => unknown,
): Promise<void> {
  const merged = await read(file);
  for (const [k, v] of mine) {
    merged.delete(k); // re-insert: most recent last
    merged.set(k, v);
  }
  while (merged.size > maxEntries) merged.delete(merged.keys().next().value as string);
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(encode(merged)));
  await rename(tmp, file);
}
