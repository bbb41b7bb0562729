/**
 * A small tmpfs for full-disk tests: only root may mount one, so the caller skips with the reason
 * returned when it cannot be had. Unmounted (lazily, so a file still open cannot stop it) and
 * removed after the test, after anything registered with `before` (a server holding files there).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Tmpfs {
  dir: string;
  /** Bytes free for an unprivileged writer. */
  free(): Promise<number>;
  /** Runs `fn` at the end of the test, before the unmount. */
  before(fn: () => unknown): void;
}

export async function mountTmpfs(t: { after(fn: () => unknown): void }, sizeMiB: number): Promise<Tmpfs | { skip: string }> {
  if (process.platform !== 'linux') return { skip: 'tmpfs mounts are a Linux test' };
  if (process.getuid?.() !== 0) return { skip: 'mounting a tmpfs needs root' };
  const dir = await mkdtemp(join(tmpdir(), 'mpk-tmpfs-'));
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m`, 'tmpfs', dir]);
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    return { skip: `cannot mount a tmpfs here: ${(e as Error).message.split('\n')[0]}` };
  }
  const first: Array<() => unknown> = [];
  t.after(async () => {
    for (const fn of first) await fn();
    await run('umount', ['-l', dir]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });
  return {
    dir,
    async free() {
      const s = await statfs(dir);
      return s.bavail * s.bsize;
    },
    before: (fn) => void first.push(fn),
  };
}
