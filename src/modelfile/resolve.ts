/**
 * Turns a Modelfile's patterns into the files to package. A pattern is a path relative to the
 * build context: an existing file or directory (all files below it), else a glob (`*`, `?`, `[…]`,
 * `{a,b}`, and `**` across directories; hidden files only when the pattern names the dot).
 * Unlike modctl, a pattern that matches nothing is an error at its line and column, and a file
 * matched by two keywords becomes one layer: the more specific pattern wins (a file named exactly,
 * then the longer literal directory part (`data` for a directory or `data/**`), then CONFIG →
 * MODEL → CODE → DOC → DATASET);
 * the same path named exactly under two keywords is an error.
 * Symbolic links are followed while they stay inside the context; ones that leave it are refused.
 */
import { lstat, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import picomatch from 'picomatch';
import { ModelfileSyntaxError, PackError, fsError } from '../errors.js';
import type { LayerKind } from '../oci/media-types.js';
import { LIST_KEYWORDS, LIST_KIND, type Modelfile, type PatternEntry, type ResolvedFile } from './types.js';
import { byteOrder, isInside, walkFiles, type WalkEntry } from './walk.js';

const KIND_ORDER: readonly LayerKind[] = ['config', 'weight', 'code', 'doc', 'dataset'];

interface Candidate extends ResolvedFile {
  /** Higher wins when two patterns pick the same file. */
  rank: number[];
  keyword: string;
  line: number;
}

export async function resolvePatterns(mf: Modelfile, contextDir: string): Promise<ResolvedFile[]> {
  const root = await realpath(contextDir).catch((e) => {
    throw fsError(e, contextDir, 'cannot read build context');
  });
  const chosen = new Map<string, Candidate>();
  let listing: Promise<WalkEntry[]> | undefined; // walked once, only if some pattern is a glob
  for (const [keyword, key] of Object.entries(LIST_KEYWORDS)) {
    const kind = LIST_KIND[key];
    for (const entry of mf[key]) {
      const at = (msg: string, hint?: string) => new ModelfileSyntaxError(mf.file, entry.line, entry.column, msg, hint);
      const rel = relativePattern(entry, contextDir, root, mf.file);
      const found = await exactMatch(root, contextDir, rel, entry, mf.file);
      let files: WalkEntry[];
      let exact = false; // names one file exactly
      let prefix: number; // length of the literal directory part: longer is more specific
      if (found !== undefined) {
        files = found;
        exact = found.length === 1 && found[0]!.path === rel;
        prefix = rel.length;
      } else if (picomatch.scan(rel).isGlob) {
        listing ??= walkFiles(contextDir);
        const match = picomatch(rel, { dot: false });
        files = (await listing).filter((f) => match(f.path));
        prefix = picomatch.scan(rel).base.length;
        if (files.length === 0) throw at(`${keyword} ${rel}: no file matches`, `check the pattern; ** matches across directories (e.g. ${keyword} **/${rel.split('/').pop()})`);
      } else {
        throw at(`${keyword} ${rel}: no such file in ${contextDir}`, 'check the name; paths are relative to the build directory');
      }
      for (const f of files) {
        if (f.problem === 'escapes') {
          throw new PackError('UNSAFE_PATH', `${mf.file}:${entry.line}:${entry.column}: ${f.path} is a symbolic link to ${f.target}, outside the build context`, {
            hint: 'copy the file into the directory, or link to a file inside it',
          });
        }
        if (f.problem === 'dangling') {
          throw at(`${f.path}: symbolic link to a missing file`, 'fix or remove the link');
        }
        const cand: Candidate = { kind, path: f.path, absPath: f.absPath, rank: [exact ? 1 : 0, prefix, -KIND_ORDER.indexOf(kind)], keyword, line: entry.line };
        const prev = chosen.get(f.path);
        if (exact && prev && prev.rank[0] === 1 && prev.kind !== kind) {
          throw at(`${f.path} is already listed as ${prev.keyword} on line ${prev.line}`, `keep one of the two lines`);
        }
        if (!prev || compareRank(cand.rank, prev.rank) > 0) chosen.set(f.path, cand);
      }
    }
  }
  if (chosen.size === 0) {
    throw new PackError('EMPTY_BUILD', `${mf.file}: lists no files`, { hint: 'add MODEL, CONFIG, CODE, DOC or DATASET lines' });
  }
  return [...chosen.values()]
    .sort((a, b) => KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind) || byteOrder(a.path, b.path))
    .map(({ kind, path, absPath }) => ({ kind, path, absPath }));
}

function compareRank(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! > b[i]! ? 1 : -1;
  return 0;
}

/** The pattern as a clean relative POSIX path; absolute paths are accepted only inside the context. */
function relativePattern(entry: PatternEntry, contextDir: string, root: string, file: string): string {
  let p = entry.pattern;
  if (isAbsolute(p)) {
    const r = [relative(contextDir, p), relative(root, p)].find((x) => x !== '' && !x.startsWith('..') && !isAbsolute(x));
    if (r === undefined) {
      throw new PackError('UNSAFE_PATH', `${file}:${entry.line}:${entry.column}: ${p} is outside the build context ${contextDir}`, {
        hint: 'give paths relative to the build directory, or build from a directory that holds the file',
      });
    }
    p = r.split(sep).join('/');
  }
  const parts = p.split('/').filter((s) => s !== '' && s !== '.');
  if (parts.includes('..')) {
    throw new PackError('UNSAFE_PATH', `${file}:${entry.line}:${entry.column}: ${entry.pattern} leaves the build context`, {
      hint: 'give paths inside the build directory (no ..)',
    });
  }
  return parts.join('/') || '.';
}

/**
 * An existing path wins over glob syntax (a file may be called `a[1].bin`). A directory gives
 * every file below it. Undefined when nothing exists there.
 */
async function exactMatch(root: string, contextDir: string, rel: string, entry: PatternEntry, file: string): Promise<WalkEntry[] | undefined> {
  const abs = rel === '.' ? contextDir : join(contextDir, ...rel.split('/'));
  const l = await lstat(abs).catch(() => undefined);
  if (!l) return undefined;
  const real = await realpath(abs).catch(() => undefined);
  if (real === undefined) return [{ path: rel, absPath: abs, problem: 'dangling' }];
  if (!isInside(root, real)) return [{ path: rel, absPath: abs, problem: 'escapes', target: real }];
  const s = await stat(abs);
  if (s.isFile()) return [{ path: rel, absPath: abs }];
  if (s.isDirectory()) {
    const below = await walkFiles(contextDir, { start: rel === '.' ? '' : rel });
    if (below.length === 0) {
      throw new ModelfileSyntaxError(file, entry.line, entry.column, `${rel}: empty directory`, 'remove the line or add files to the directory');
    }
    return below;
  }
  throw new ModelfileSyntaxError(file, entry.line, entry.column, `${rel}: not a regular file or directory`, 'package regular files only');
}
