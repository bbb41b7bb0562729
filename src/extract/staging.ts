/**
 * All-or-nothing writes under a target directory. Every file is first written to a temp file
 * beside its destination and renamed into place only by `commit`, after every file has been
 * verified; `abort` removes the temp files and the directories this run created. Directories are
 * made one component at a time and a symbolic link on the way is refused, so no path from an
 * artifact can write outside the target, whatever links the directory already holds.
 */
import { lstat, mkdir, realpath, rename, rmdir, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { PackError, fsError } from '../errors.js';

export class Staging {
  private readonly created: string[] = [];
  private readonly dirs = new Map<string, Promise<void>>();
  /** Destination (relative path) → temp file. */
  private readonly staged = new Map<string, string>();
  private seq = 0;

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

  /** A temp path for `rel`, in the directory it will be renamed into. */
  async stage(rel: string): Promise<string> {
    if (this.dirs.has(rel)) throw conflict(rel);
    const i = rel.lastIndexOf('/');
    await this.ensureDir(i < 0 ? '' : rel.slice(0, i));
    const previous = this.staged.get(rel);
    if (previous) await unlink(previous).catch(() => undefined); // a later tar entry wins, as in tar
    const tmp = join(this.dest(rel), '..', `.mpk-extract-${process.pid}-${++this.seq}.tmp`);
    this.staged.set(rel, tmp);
    return tmp;
  }

  /** Renames every staged file into place. */
  async commit(): Promise<void> {
    for (const [rel, tmp] of this.staged) {
      const dest = this.dest(rel);
      try {
        await rename(tmp, dest);
      } catch (e) {
        throw fsError(e, dest, 'cannot write');
      }
    }
    this.staged.clear();
  }

  /** Removes staged temp files and the directories this run made (when empty). */
  async abort(): Promise<void> {
    await Promise.all([...this.staged.values()].map((t) => unlink(t).catch(() => undefined)));
    this.staged.clear();
    for (const d of [...this.created.reverse(), ...this.madeRoot]) await rmdir(d).catch(() => undefined);
    this.created.length = 0;
  }
}

function conflict(rel: string): PackError {
  return new PackError('INVALID_MANIFEST', `${rel}: the artifact names it both as a file and as a directory`, {
    hint: 'the artifact is malformed; nothing was extracted',
  });
}
