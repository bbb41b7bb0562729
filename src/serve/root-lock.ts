/**
 * One process owns a registry root at a time: `serve.lock` (O_EXCL, `pid host`), held while the
 * server runs or an offline collection works. A lock left by a dead process (kill -9) is broken.
 */
import { mkdir, open, readFile, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { PackError, fsError } from '../errors.js';
import { breakIfStale } from '../store/lock.js';

export async function lockRoot(root: string, what: string): Promise<() => Promise<void>> {
  await mkdir(root, { recursive: true }).catch((e) => {
    throw fsError(e, root, 'cannot create the registry root');
  });
  const path = join(root, 'serve.lock');
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(path, 'wx', 0o644);
      try {
        await fh.writeFile(`${process.pid} ${hostname()}`);
      } finally {
        await fh.close();
      }
      return () => unlink(path).catch(() => undefined);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw fsError(e, path, 'cannot create lock');
    }
    if (!(await breakIfStale(path))) break;
  }
  const owner = (await readFile(path, 'utf8').catch(() => '')).trim();
  throw new PackError('LOCKED', `${root}: in use by another mpk serve${owner ? ` (pid ${owner.split(' ')[0]})` : ''}, so ${what} cannot start`, {
    hint: 'stop that server first, or use another --root (a collection can run inside the server: mpk serve --gc-interval)',
  });
}
