/**
 * All-or-nothing writes under a target directory. Every file is first written to a temp file
 * beside its destination and renamed into place only by `commit`, after every file has been
 * verified; `abort` removes the temp files and the directories this run created. Directories are
 * made one component at a time and a symbolic link on the way is refused, so no path from an
 * artifact can write outside the target, whatever links the directory already holds.
 */
import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import { lstat, mkdir, realpath, rename, rmdir, stat, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { PackError, fsError } from '../errors.js';

export class Staging {
  private readonly created: string[] = [];
  private readonly dirs = new Map<string, Promise<void>>();
  /** Destination (relative path) → temp file and the layer that wrote it. */
  private readonly staged = new Map<string, { tmp: string; owner: string }>();

  private constructor(
    readonly root: string,
    /** The target directory and those above it that open() made, deepest first. */
    private readonly madeRoot: string[],
  ) {}

  /** Creates the target directory if needed (the user named it, so links to it are fine). */
  static async open(dir: string): Promise<Staging> {
    try {
      const first = await mkdir(dir, { recursive: true });
      const made: string[] = [];
      if (first !== undefined) for (let d = resolve(dir); d.length >= first.length; d = dirname(d)) made.push(d);
      return new Staging(await realpath(dir), made);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' || code === 'ENOTDIR') {
        const blocker = await firstNonDirectory(resolve(dir));
        if (blocker) {
          throw new PackError('ALREADY_EXISTS', `${blocker}: is a file, not a directory; cannot extract into ${dir}`, {
            cause: e,
            hint: `name a directory to extract into (it is created if missing), or move ${blocker} out of the way`,
          });
        }
      }
      throw fsError(e, dir, 'cannot create target directory');
    }
  }

  /** The absolute destination of a safe relative path. */
  dest(rel: string): string {
    return join(this.root, ...rel.split('/'));
  }

  /** Makes sure every directory of `rel` exists under the root and none is a symbolic link. */
  async ensureDir(rel: string): Promise<void> {
    if (rel === '') return;
    let p = this.dirs.get(rel);
    if (!p) {
      p = (async () => {
        const i = rel.lastIndexOf('/');
        await this.ensureDir(i < 0 ? '' : rel.slice(0, i));
        if (this.staged.has(rel)) throw conflict(rel);
        const abs = this.dest(rel);
        try {
          await mkdir(abs);
          this.created.push(abs);
          return;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw fsError(e, abs, 'cannot create directory');
        }
        const st = await lstat(abs);
        if (st.isSymbolicLink()) {
          throw new PackError('UNSAFE_PATH', `${abs}: is a symbolic link; refusing to write through it`, {
            hint: 'extract into an empty directory, or remove the link',
          });
        }
        if (!st.isDirectory()) {
          throw new PackError('ALREADY_EXISTS', `${abs}: exists and is not a directory`, { hint: 'extract into an empty directory' });
        }
      })();
      this.dirs.set(rel, p);
    }
    return p;
  }

  /**
   * A new, unpredictable temp path for `rel`, in the directory it will be renamed into; the
   * caller creates it exclusively (`wx`), so a planted file or link by that name is never
   * written through. `owner` names the layer: a second layer claiming the same path makes the
   * artifact malformed, while a later entry of the same tar layer replaces an earlier one, as in tar.
   */
  async stage(rel: string, owner: string): Promise<string> {
    if (this.dirs.has(rel)) throw conflict(rel);
    const i = rel.lastIndexOf('/');
    await this.ensureDir(i < 0 ? '' : rel.slice(0, i));
    const previous = this.staged.get(rel);
    if (previous) {
      if (previous.owner !== owner) {
        throw new PackError('INVALID_MANIFEST', `${rel}: two layers hold this file (${previous.owner}, ${owner})`, { hint: 'the artifact is malformed; nothing was extracted' });
      }
      await unlink(previous.tmp).catch(() => undefined);
    }
    const tmp = join(this.dest(rel), '..', `.mpk-extract-${randomBytes(12).toString('hex')}.tmp`);
    this.staged.set(rel, { tmp, owner });
    return tmp;
  }

  /** Drops a staged file (the destination already holds the same bytes). */
  async unstage(rel: string): Promise<void> {
    const s = this.staged.get(rel);
    this.staged.delete(rel);
    if (s) await unlink(s.tmp).catch(() => undefined);
  }

  /**
   * Checks what is at the destination before anything is staged for it: nothing, a regular file
   * (returned, for the caller to compare), or else a refusal: a directory always, a link or
   * other file unless `overwrite` (rename then replaces the link itself, never its target).
   */
  async existing(rel: string, overwrite: boolean): Promise<Stats | undefined> {
    const dest = this.dest(rel);
    const st = await lstat(dest).catch(() => undefined);
    if (!st) return undefined;
    if (st.isDirectory()) throw new PackError('ALREADY_EXISTS', `${dest}: is a directory`, { hint: 'extract into an empty directory' });
    if (!st.isFile() && !overwrite) {
      throw new PackError('ALREADY_EXISTS', `${dest}: exists and is not a regular file`, { hint: 'add --overwrite to replace it, or extract into an empty directory' });
    }
    return st.isFile() ? st : undefined;
  }

  /** Renames every staged file into place, after checking that none would land on a directory. */
  async commit(): Promise<void> {
    for (const rel of this.staged.keys()) {
      const st = await lstat(this.dest(rel)).catch(() => undefined);
      if (st?.isDirectory()) throw new PackError('ALREADY_EXISTS', `${this.dest(rel)}: is a directory`, { hint: 'extract into an empty directory' });
    }
    for (const [rel, { tmp }] of this.staged) {
      const dest = this.dest(rel);
      try {
        await rename(tmp, dest);
      } catch (e) {
        throw fsError(e, dest, 'cannot write');
      }
      this.staged.delete(rel);
    }
  }

  /** Removes staged temp files and the directories this run made (when empty). */
  async abort(): Promise<void> {
    await Promise.all([...this.staged.values()].map((t) => unlink(t.tmp).catch(() => undefined)));
    this.staged.clear();
    for (const d of [...this.created.reverse(), ...this.madeRoot]) await rmdir(d).catch(() => undefined);
    this.created.length = 0;
  }
}

/** The first component of an absolute path, from the top down, that exists and is not a directory. */
async function firstNonDirectory(abs: string): Promise<string | undefined> {
  const chain: string[] = [];
  for (let d = abs; ; d = dirname(d)) {
    chain.unshift(d);
    if (dirname(d) === d) break;
  }
  for (const p of chain) {
    const st = await stat(p).catch(() => undefined);
    if (!st) return undefined;
    if (!st.isDirectory()) return p;
  }
  return undefined;
}

function conflict(rel: string): PackError {
  return new PackError('INVALID_MANIFEST', `${rel}: the artifact names it both as a file and as a directory`, {
    hint: 'the artifact is malformed; nothing was extracted',
  });
}
