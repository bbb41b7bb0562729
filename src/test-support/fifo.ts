/**
 * FIFOs where files are expected: a reader that opens one without O_NONBLOCK waits for a writer
 * for ever. `settles` turns such a hang into a test failure instead of a stuck test process: if
 * the promise is still pending after `ms`, the FIFOs are opened read-write (which releases any
 * blocked open) and 'hung' is returned.
 */
import { execFileSync } from 'node:child_process';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';

export function mkfifo(path: string): void {
  execFileSync('mkfifo', [path]);
}

export type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown } | 'hung';

export async function settles<T>(p: Promise<T>, fifos: string[], ms = 5000): Promise<Settled<T>> {
  const done = p.then(
    (value): Settled<T> => ({ ok: true, value }),
    (error: unknown): Settled<T> => ({ ok: false, error }),
  );
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), ms)));
  const first = await Promise.race([done, late]);
  clearTimeout(timer);
  if (first !== 'hung') return first;
  for (const f of fifos) await (await open(f, constants.O_RDWR | constants.O_NONBLOCK)).close().catch(() => undefined);
  await done; // released: let it finish before the temp dirs go
  return 'hung';
}
