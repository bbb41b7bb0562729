/**
 * Reads a ModelPack tar / tar+gzip / tar+zstd layer (modctl writes them, mpk only reads them):
 * the blob is verified as it streams, decompressed, and each regular-file entry is staged under
 * the target. Entry names are checked like annotations (no absolute paths, no `..`); links,
 * devices and fifos are skipped with a warning, never created.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { PackError } from '../errors.js';
import { PassThrough, Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Decompress } from 'fzstd';
import { extract as tarExtract, type Extract } from 'tar-stream';
import type { LayerEncoding } from '../oci/media-types.js';
import { VerifyStream, type Expected } from '../oci/digest.js';
import { safeRelativePath } from '../internal/safe-path.js';
import { sha256File } from '../internal/file-digest.js';
import type { Staging } from './staging.js';

export interface TarEntryResult {
  path: string;
  size: number;
  mode: number;
  /** The destination already held these bytes. */
  unchanged: boolean;
}

/** zstd frames decoded as they arrive (fzstd: pure JS, no install scripts). */
class ZstdDecode extends Transform {
  private readonly z = new Decompress((chunk) => {
    this.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  });
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    try {
      this.z.push(chunk);
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }
  override _flush(cb: TransformCallback): void {
    try {
      this.z.push(new Uint8Array(0), true);
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }
}

export async function extractTarLayer(opts: {
  blob: Readable;
  layer: Expected;
  encoding: Exclude<LayerEncoding, 'raw'>;
  staging: Staging;
  /** Which entries to keep, by safe relative path. */
  want: (path: string) => boolean;
  keepMtime: boolean;
  overwrite: boolean;
  onWarning: (w: string) => void;
  signal?: AbortSignal;
}): Promise<TarEntryResult[]> {
  const out: TarEntryResult[] = [];
  const extract = tarExtract();
  const where = `layer ${opts.layer.digest}`;
  const consume = async (entries: Extract) => {
    for await (const entry of entries) {
      const h = entry.header;
      const path = h.type === 'directory' && /^\.?\/?$/.test(h.name) ? '' : safeRelativePath(h.name, `${where}: tar entry`);
      if (h.type === 'directory') {
        if (path !== '' && opts.want(path)) await opts.staging.ensureDir(path);
        await drainEntry(entry);
        continue;
      }
      if (h.type !== 'file' && h.type !== 'contiguous-file') {
        opts.onWarning(`${where}: skipped ${path} (${h.type ?? 'unknown'} entries are not extracted)`);
        await drainEntry(entry);
        continue;
      }
      if (!opts.want(path)) {
        await drainEntry(entry);
        continue;
      }
      const existing = await opts.staging.existing(path, opts.overwrite);
      const tmp = await opts.staging.stage(path, where);
      const mode = (h.mode ?? 0o644) & 0o777;
      const hash = createHash('sha256');
      const fh = await open(tmp, 'wx', 0o600);
      try {
        for await (const chunk of entry) {
          hash.update(chunk as Uint8Array);
          await fh.write(chunk as Uint8Array);
        }
        await fh.chmod(mode);
        if (opts.keepMtime && h.mtime && h.mtime.getTime() > 0) await fh.utimes(h.mtime, h.mtime);
      } finally {
        await fh.close();
      }
      let unchanged = false;
      if (existing) {
        // Same bytes already there: leave the file alone; different bytes: only with --overwrite.
        unchanged = existing.size === (h.size ?? -1) && (await sha256File(opts.staging.dest(path))) === `sha256:${hash.digest('hex')}`;
        if (unchanged) await opts.staging.unstage(path);
        else if (!opts.overwrite) {
          throw new PackError('ALREADY_EXISTS', `${opts.staging.dest(path)}: exists and differs from the model's file`, { hint: 'add --overwrite to replace it, or extract into an empty directory' });
        }
      }
      out.push({ path, size: h.size ?? 0, mode, unchanged });
    }
  };
  const decode = opts.encoding === 'tar+gzip' ? createGunzip() : opts.encoding === 'tar+zstd' ? new ZstdDecode() : new PassThrough();
  // tar-stream's extractor is a streamx stream: fed by hand, with back-pressure, not through pipeline.
  const feed = async (src: AsyncIterable<Buffer>) => {
    for await (const chunk of src) {
      if (extract.destroyed) throw new Error('tar extraction stopped');
      if (!extract.write(chunk)) await drained(extract);
    }
    extract.end(null);
  };
  const results = await Promise.allSettled([
    pipeline(opts.blob, new VerifyStream(opts.layer), decode, feed, ...(opts.signal ? [{ signal: opts.signal }] : [])).catch((e: unknown) => {
      extract.destroy(e as Error);
      throw e;
    }),
    consume(extract).catch((e: unknown) => {
      extract.destroy(e as Error);
      throw e;
    }),
  ]);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return out;
}

async function drainEntry(entry: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of entry); // entries must be read to reach the next one
}

function drained(s: Extract): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      s.off('drain', done);
      s.off('close', done);
      resolve();
    };
    s.on('drain', done);
    s.on('close', done);
  });
}
