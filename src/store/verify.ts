/**
 * `mpk verify`: rehashes stored content and reports, by digest, every blob that is corrupt or
 * missing. With references, only what they reach; without, every model in the store.
 */
import { hasErrorCode } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { readIndex } from './index-file.js';
import { reachableFrom } from './reachable.js';
import type { LocalStore } from './store.js';

export interface VerifyProblem {
  digest: string;
  problem: 'corrupt' | 'missing' | 'unreadable';
  detail: string;
}

export interface VerifyResult {
  checked: number;
  checkedBytes: number;
  problems: VerifyProblem[];
}

export interface VerifyOptions {
  onBlob?(desc: Descriptor, done: number, total: number): void;
}

export async function verifyStore(store: LocalStore, references: string[] = [], opts: VerifyOptions = {}): Promise<VerifyResult> {
  const roots = references.length > 0 ? await Promise.all(references.map((r) => store.resolve(r))) : (await readIndex(store.root)).manifests;
  const { nodes, unreadable } = await reachableFrom(store, roots);
  const result: VerifyResult = { checked: 0, checkedBytes: 0, problems: [] };
  const all = [...nodes.values()].sort((a, b) => (a.digest < b.digest ? -1 : 1));
  for (const desc of all) {
    opts.onBlob?.(desc, result.checked, all.length);
    try {
      await store.blobs.verify(desc);
    } catch (e) {
      const problem = hasErrorCode(e, 'NOT_FOUND') ? 'missing' : hasErrorCode(e, 'CORRUPT') ? 'corrupt' : 'unreadable';
      result.problems.push({ digest: desc.digest, problem, detail: (e as Error).message });
    }
    result.checked++;
    result.checkedBytes += desc.size;
  }
  for (const [digest, detail] of unreadable) {
    if (!result.problems.some((p) => p.digest === digest)) result.problems.push({ digest, problem: 'unreadable', detail });
  }
  return result;
}
