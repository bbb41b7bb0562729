/**
 * `index.json` of the OCI image layout: one entry per reference, named by
 * `org.opencontainers.image.ref.name`. Every change is a read-modify-write under `index.json.lock`,
 * written to a temp file and renamed, so readers never see a torn file and writers never lose
 * each other's entries.
 * Reference: https://github.com/opencontainers/image-spec/blob/v1.1.1/image-layout.md
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PackError, fsError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { validateDescriptor } from '../oci/descriptor.js';
import { ANNOTATION_REF_NAME, OCI_INDEX, OCI_LAYOUT_VERSION } from '../oci/media-types.js';
import { withLock } from './lock.js';

export interface IndexDoc {
  schemaVersion: 2;
  mediaType: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export function refNameOf(d: Descriptor): string | undefined {
  return d.annotations?.[ANNOTATION_REF_NAME];
}

/** Creates `oci-layout`, an empty `index.json` and `blobs/sha256` when missing; true when it wrote `oci-layout`. */
export async function initLayout(root: string): Promise<boolean> {
  try {
    await mkdir(join(root, 'blobs', 'sha256'), { recursive: true });
    const created = await writeFile(join(root, 'oci-layout'), JSON.stringify({ imageLayoutVersion: OCI_LAYOUT_VERSION }), { flag: 'wx' }).then(() => true, ignoreExists);
    const empty: IndexDoc = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] };
    await writeFile(join(root, 'index.json'), JSON.stringify(empty), { flag: 'wx' }).catch(ignoreExists);
    return created;
  } catch (e) {
    throw fsError(e, root, 'cannot create the store at');
  }
}

function ignoreExists(e: NodeJS.ErrnoException): false {
  if (e.code !== 'EEXIST') throw e;
  return false;
}

/** Reads index.json (without the lock: the file is only ever replaced whole). */
export async function readIndex(root: string): Promise<IndexDoc> {
  const path = join(root, 'index.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] };
    throw fsError(e, path);
  }
  let doc: IndexDoc;
  try {
    doc = JSON.parse(text) as IndexDoc;
  } catch (e) {
    throw new PackError('CORRUPT', `${path}: not valid JSON`, { cause: e, hint: 'restore it from a backup, or move the store aside and pull again' });
  }
  if (!doc || !Array.isArray(doc.manifests)) throw new PackError('CORRUPT', `${path}: has no manifests array`);
  doc.manifests.forEach((m, i) => validateDescriptor(m, `${path}: manifests[${i}]`));
  return doc;
}

/**
 * Applies `change` to the index under the lock and writes the result atomically.
 * `change` returns the value passed back to the caller.
 */
export async function updateIndex<T>(root: string, change: (doc: IndexDoc) => T | Promise<T>): Promise<T> {
  const path = join(root, 'index.json');
  return withLock(`${path}.lock`, async () => {
    const doc = await readIndex(root);
    const result = await change(doc);
    await writeIndexLocked(root, doc);
    return result;
  });
}

/** Writes index.json (sorted, temp + rename); the caller holds `index.json.lock` (prune does). */
export async function writeIndexLocked(root: string, doc: IndexDoc): Promise<void> {
  const path = join(root, 'index.json');
  doc.manifests.sort((a, b) => cmp(refNameOf(a) ?? '', refNameOf(b) ?? '') || cmp(a.digest, b.digest));
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    await writeFile(tmp, JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: doc.manifests, annotations: doc.annotations }));
    await rename(tmp, path);
  } catch (e) {
    throw fsError(e, path, 'cannot write');
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
