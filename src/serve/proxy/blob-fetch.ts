/**
 * A blob fetched once from the upstream however many clients ask for it at once. The first ask
 * starts one GET; its bytes go to a spool file (hashed as they pass) and every client, first or
 * late, streams from that file as it grows, up to the blob's end. Only when the whole blob has
 * its digest is it kept: handed to the registry's storage (the filesystem pool takes the file by
 * rename; object storage through an upload session). A digest mismatch or a cut upstream ends
 * every client's body early (they see a short body, never a wrong one kept) and keeps nothing.
 * The fetch does not depend on any client: one who leaves does not stop it.
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { open, unlink } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { parseDigest } from '../../oci/digest.js';
import type { BlobBody } from '../storage.js';
import type { Upstream } from './upstream.js';

const READ = 1024 * 1024;

/** Keeps a verified spool file as blob `digest` of repository `name`. */
export type Keep = (spool: string, name: string, digest: string, size: number) => Promise<void>;

class Fetch extends EventEmitter {
  written = 0;
  failed: Error | undefined;
  kept = false;
  readonly done: Promise<void>;
  constructor(
    readonly digest: string,
    readonly size: number,
    readonly spool: string,
    run: (f: Fetch) => Promise<void>,
  ) {
    super();
    this.setMaxListeners(0);
    this.done = run(this).catch((e: unknown) => {
      this.failed = e instanceof Error ? e : new Error(String(e));
      this.emit('progress');
    });
  }
}

export class BlobFetches {
  private readonly inflight = new Map<string, Fetch>();
  /** GETs sent to the upstream for blobs (what the test of "one fetch per blob" counts too). */
  started = 0;

  constructor(
    private readonly upstream: Upstream,
    private readonly spoolDir: string,
    private readonly keep: Keep,
  ) {}

  /** The size of a blob being fetched now, if one is. */
  sizeInFlight(digest: string): number | undefined {
    return this.inflight.get(digest)?.size;
  }

  /** A body that streams blob `digest` as the one fetch of it brings it; undefined once it is kept (read it from the store). */
  async open(name: string, digest: string, size: number): Promise<BlobBody | undefined> {
    let f = this.inflight.get(digest);
    if (!f) {
      this.started++;
      f = new Fetch(digest, size, join(this.spoolDir, `${randomUUID()}.part`), (x) => this.run(x, name));
      this.inflight.set(digest, f);
      const mine = f;
      void f.done.finally(() => {
        if (this.inflight.get(digest) === mine) this.inflight.delete(digest);
      });
    }
    const fetch = f;
    // Opened now, while the spool file is surely there (it is removed once kept or failed).
    await waitFor(fetch, () => fetch.written > 0 || fetch.failed !== undefined || fetch.kept || size === 0);
    if (fetch.failed) throw this.upstream.down(fetch.failed);
    const fh = size === 0 ? undefined : await open(fetch.spool, 'r').catch(() => undefined);
    if (!fh && size > 0) {
      await fetch.done;
      if (fetch.failed) throw this.upstream.down(fetch.failed);
      return undefined; // kept meanwhile
    }
    return {
      size,
      async send(start: number, end: number, res: ServerResponse): Promise<void> {
        const buf = Buffer.allocUnsafeSlow(Math.min(READ, end - start + 1));
        try {
          for (let pos = start; pos <= end; ) {
            await waitFor(fetch, () => fetch.written > pos || fetch.failed !== undefined);
            if (fetch.failed || res.destroyed) throw fetch.failed ?? new Error('client gone');
            const n = Math.min(buf.length, Math.min(fetch.written, end + 1) - pos);
            const { bytesRead } = await fh!.read(buf, 0, n, pos);
            if (bytesRead === 0) throw new Error('the spool ended early');
            pos += bytesRead;
            await new Promise<void>((resolve, reject) => res.write(buf.subarray(0, bytesRead), (e) => (e ? reject(e) : resolve())));
          }
          res.end();
        } catch {
          res.destroy(); // a failed fetch or a client gone: this body is over (short, so the client cannot take it for whole)
        }
      },
      close: async () => void (await fh?.close().catch(() => undefined)),
    };
  }

  private async run(f: Fetch, name: string): Promise<void> {
    const { algorithm } = parseDigest(f.digest);
    const hash = createHash(algorithm);
    const out = createWriteStream(f.spool, { flags: 'wx', mode: 0o644 });
    try {
      const body = await this.upstream.blob(name, f.digest, f.size);
      await new Promise<void>((resolve, reject) => {
        out.once('error', reject);
        body.once('error', reject);
        body.on('data', (c: Buffer) => {
          hash.update(c);
          const more = out.write(c, (e) => {
            if (e) return;
            f.written += c.length;
            f.emit('progress');
          });
          if (!more) {
            body.pause();
            out.once('drain', () => body.resume());
          }
        });
        body.once('end', () => out.end(resolve));
      });
      const got = `${algorithm}:${hash.digest('hex')}`;
      if (f.written !== f.size || got !== f.digest) throw new Error(`the upstream sent ${f.written} bytes with digest ${got} for ${f.digest} (${f.size} bytes); nothing was kept`);
      await this.keep(f.spool, name, f.digest, f.size);
      f.kept = true;
      f.emit('progress');
    } finally {
      out.destroy();
      await unlink(f.spool).catch(() => undefined);
    }
  }
}

function waitFor(f: Fetch, ready: () => boolean): Promise<void> {
  if (ready()) return Promise.resolve();
  return new Promise((resolve) => {
    const check = (): void => {
      if (!ready()) return;
      f.off('progress', check);
      resolve();
    };
    f.on('progress', check);
  });
}
