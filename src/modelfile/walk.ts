/**
 * Lists the files under a directory in byte order of their relative POSIX paths. Symbolic links
 * are followed while they stay inside the root (cycles are cut), as `find -L` does; a link that leads outside is
 * reported, never followed, so callers can refuse it by name.
 */
import { lstat, readdir, realpath, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { fsError } from '../errors.js';

export interface WalkEntry {
  /** Path relative to the root, POSIX separators. */
  path: string;
  /** Absolute path under the root (not the link target). */
  absPath: string;
  /** Set when the entry is a symbolic link whose target leaves the root (or is missing). */
  problem?: 'escapes' | 'dangling';
  target?: string;
}

export interface WalkOptions {
  /** Start below the root at this relative directory ('' for the root). */
  start?: string;
  /** Return true to skip a directory (relative path) and everything under it. */
  pruneDir?: (relPath: string, name: string) => boolean;
  /** Return true to leave a file out. */
  skipFile?: (relPath: string, name: string) => boolean;
}

/** True when `child` (a real path) is `root` or inside it. */
export function isInside(root: string, child: string): boolean {
  const r = relative(root, child);
  return r === '' || (!r.startsWith('..') && !r.startsWith(sep) && r.split(sep)[0] !== '..');
}

export async function walkFiles(root: string, opts: WalkOptions = {}): Promise<WalkEntry[]> {
  const realRoot = await realpath(root).catch((e) => {
    throw fsError(e, root, 'cannot read directory');
  });
  const out: WalkEntry[] = [];
  // Real paths of the directories above the one being listed: a link back to one of them is a
  // cycle and is cut. A directory reached by two paths (a link beside it) is listed under both.
  const visit = async (rel: string, ancestors: ReadonlySet<string>): Promise<void> => {
    const abs = rel === '' ? root : join(root, ...rel.split('/'));
    const real = await realpath(abs).catch((e) => {
      throw fsError(e, abs, 'cannot read directory');
    });
    if (ancestors.has(real)) return;
    const above = new Set(ancestors).add(real);
    let names: string[];
    try {
      names = (await readdir(abs)).sort(byteOrder);
    } catch (e) {
      throw fsError(e, abs, 'cannot read directory');
    }
    for (const name of names) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const childAbs = join(abs, name);
      let st = await lstat(childAbs).catch((e) => {
        throw fsError(e, childAbs, 'cannot read');
      });
      if (st.isSymbolicLink()) {
        const target = await realpath(childAbs).catch(() => undefined);
        if (target === undefined) {
          if (!opts.skipFile?.(childRel, name)) out.push({ path: childRel, absPath: childAbs, problem: 'dangling' });
          continue;
        }
        if (!isInside(realRoot, target)) {
          if (!opts.skipFile?.(childRel, name)) out.push({ path: childRel, absPath: childAbs, problem: 'escapes', target });
          continue;
        }
        st = await stat(childAbs);
      }
      if (st.isDirectory()) {
        if (!opts.pruneDir?.(childRel, name)) await visit(childRel, above);
      } else if (st.isFile()) {
        if (!opts.skipFile?.(childRel, name)) out.push({ path: childRel, absPath: childAbs });
      } // sockets, fifos and devices are not model files
    }
  };
  const start = opts.start ?? '';
  await visit(start, new Set());
  return out.sort((a, b) => byteOrder(a.path, b.path));
}

/** Byte order of UTF-16 code units: locale-independent, the same on every machine. */
export function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
