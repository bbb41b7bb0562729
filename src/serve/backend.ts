/**
 * The registry's storage chosen at start: a filesystem root (the default; one process owns it
 * through serve.lock) or an S3 bucket (`--storage s3://BUCKET[/PREFIX]`; any number of replicas,
 * no lock: all state is in the bucket). Either way the server gets a RegistryStorage, an
 * UploadStore and a collector.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PackError } from '../errors.js';
import { collectGarbage, type GcOptions, type GcResult } from './gc.js';
import { RepoStore } from './repo-store.js';
import { lockRoot } from './root-lock.js';
import type { RegistryStorage, UploadStore } from './storage.js';
import { Uploads, type UploadsOptions } from './uploads.js';

export interface BackendOptions {
  /** The filesystem root (ignored with `storage`). */
  root: string;
  /** `s3://BUCKET[/PREFIX]`: object storage instead of the root. */
  storage?: string | undefined;
  s3Endpoint?: string | undefined;
  s3Region?: string | undefined;
  s3Credentials?: { accessKeyId: string; secretAccessKey: string } | undefined;
  /** Blob GETs answered with a 307 to a presigned URL valid this many seconds (object storage only). */
  s3RedirectSeconds?: number | undefined;
  fsync?: boolean | undefined;
  uploads: UploadsOptions;
}

export interface Backend {
  /** Where the registry keeps its content: the root folder, or the s3:// URL. */
  where: string;
  store: RegistryStorage;
  uploads: UploadStore;
  collect(o: GcOptions): Promise<GcResult>;
  /** Where a pull-through cache spools the blobs it fetches (the filesystem's root, else a temp folder). */
  spoolDir(): Promise<string>;
  /** Keeps a verified file as blob `digest` of `name`: renamed into the pool, or uploaded to the bucket. */
  keepFile(path: string, name: string, digest: string, size: number): Promise<void>;
  /** Lets go of the root (the filesystem's lock); nothing on object storage. */
  release(): Promise<void>;
}

export async function openBackend(o: BackendOptions, what = 'the server'): Promise<Backend> {
  // The AWS SDK takes ~0.3-0.7 s to load: only a server on S3 pays for it.
  if (o.storage !== undefined) return (await import('./s3/open-s3.js')).openS3(o);
  if (o.s3Endpoint !== undefined || o.s3RedirectSeconds) {
    throw new PackError('USAGE', '--s3-endpoint and --s3-redirect need --storage s3://BUCKET', { hint: 'e.g. --storage s3://models --s3-endpoint http://127.0.0.1:7480' });
  }
  const release = await lockRoot(o.root, what);
  try {
    const store = new RepoStore(o.root, !!o.fsync);
    const uploads = new Uploads(o.root, store.pool, o.uploads);
    // The sessions a previous run left count against --max-upload-sessions from the start.
    await uploads.countSessions();
    return {
      where: o.root,
      store,
      uploads,
      release,
      collect: (g) => collectGarbage(store, uploads, g),
      async spoolDir() {
        const dir = join(o.root, 'proxy-spool');
        await rm(dir, { recursive: true, force: true }); // what a previous run left
        await mkdir(dir, { recursive: true });
        return dir;
      },
      async keepFile(path, name, digest) {
        await store.pool.commit(path, digest);
        await store.linkBlob(name, digest);
      },
    };
  } catch (e) {
    await release();
    throw e;
  }
}
