/** sha256 of a file on disk, streamed in 1 MiB reads (`sha256:<hex>`). */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path, { highWaterMark: 1024 * 1024 })) h.update(c as Buffer);
  return `sha256:${h.digest('hex')}`;
}
