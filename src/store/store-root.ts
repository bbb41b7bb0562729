/**
 * The folder a store lives in. `--store DIR` may name any path, so before writing `oci-layout`,
 * `index.json` and `blobs/` into it, mpk checks that it is a store already (it has `oci-layout`:
 * mpk's or any OCI image layout), or new, or empty, or holds only what mpk itself puts there (a
 * store whose creation was cut short, or `mpk serve`'s default `registry/`). A model folder or any
 * other non-empty folder is refused, and a file where the folder should be too.
 */
import { readdir } from 'node:fs/promises';
import { PackError, fsError } from '../errors.js';
import { initLayout } from './index-file.js';

/** What mpk may leave at the top of a store before its `oci-layout` exists. */
const OWN_ENTRIES = new Set(['blobs', 'ingest', 'leases', 'cache', 'run', 'registry', 'mirrors.json', 'lost+found']);

/** Checks and, when needed, creates the store at `root` (absolute); `created` when it was new. */
export async function prepareStoreRoot(root: string): Promise<{ created: boolean }> {
  let names: string[] = [];
  try {
    names = await readdir(root);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR') {
      throw new PackError('USAGE', `${root}: is a file, not a store folder`, { hint: STORE_HINT });
    }
    if (code !== 'ENOENT') throw fsError(e, root, 'cannot open the store at');
  }
  if (!names.includes('oci-layout')) {
    const foreign = names.filter((n) => !OWN_ENTRIES.has(n)).sort();
    if (foreign.length > 0) {
      const shown = foreign.slice(0, 3).join(', ') + (foreign.length > 3 ? ` and ${foreign.length - 3} more` : '');
      throw new PackError('USAGE', `${root}: is not an mpk store and is not empty (it holds ${shown}); refusing to write a store into it`, {
        hint: STORE_HINT,
      });
    }
  }
  return { created: await initLayout(root) };
}

const STORE_HINT = 'name a new or empty folder, or an existing store (a folder with an oci-layout file); without --store the store is $MPK_HOME, else ~/.mpk';
