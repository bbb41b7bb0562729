/**
 * The registry's storage chosen at start: a filesystem root (the default; one process owns it
 * through serve.lock) or an S3 bucket (`--storage s3://BUCKET[/PREFIX]`; any number of replicas,
 * no lock: all state is in the bucket). Either way the server gets a RegistryStorage, an
 * UploadStore and a collector.
 */
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PackError } from '../errors.js';
import { parseDigest } from '../oci/digest.js';
import { collectGarbage, type GcOptions, type GcResult } from './gc.js';
import { RepoStore } from './repo-store.js';
import { lockRoot } from './root-lock.js';
import { Bucket, makeS3Client, parseS3Url } from './s3/s3-client.js';
import { collectS3Garbage } from './s3/s3-gc.js';
import { S3Store } from './s3/s3-store.js';
import { S3Uploads } from './s3/s3-uploads.js';
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
  if (o.storage !== undefined) return openS3(o);
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

async function openS3(o: BackendOptions): Promise<Backend> {
  const loc = parseS3Url(o.storage!);
  const client = makeS3Client({
    ...(o.s3Endpoint !== undefined ? { endpoint: o.s3Endpoint } : {}),
    ...(o.s3Region !== undefined ? { region: o.s3Region } : {}),
    ...(o.s3Credentials ? { credentials: o.s3Credentials } : {}),
  });
  const bucket = new Bucket(client, loc);
  try {
    // One request up front: a wrong endpoint, bucket or credential fails the start, not the first push.
    await bucket.head('_catalog/');
  } catch (e) {
    client.destroy();
    const err = e as Error & { $metadata?: { httpStatusCode?: number } };
    throw new PackError('IO', `${o.storage}: the bucket cannot be read (${err.$metadata?.httpStatusCode ?? err.name}: ${err.message || 'no message'})`, {
      hint: 'check the bucket exists, --s3-endpoint, and the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE)',
    });
  }
  const store = new S3Store(bucket, { redirectSeconds: o.s3RedirectSeconds ?? 0 });
  let spool: string | undefined;
  const uploads = new S3Uploads(bucket, { ...(o.uploads.ttlMs ? { ttlMs: o.uploads.ttlMs } : {}) });
  return {
    where: o.storage!,
    store,
    uploads,
    collect: (g) => collectS3Garbage(store, uploads, g),
    release: async () => {
      client.destroy();
      if (spool) await rm(spool, { recursive: true, force: true });
    },
    async spoolDir() {
      spool ??= await mkdtemp(join(tmpdir(), 'mpk-proxy-'));
      return spool;
    },
    async keepFile(path, name, digest, size) {
      const s = await uploads.create(name);
      try {
        await uploads.append(s, createReadStream(path), { length: size, location: '' });
        await uploads.complete(s, digest, parseDigest(digest), '');
      } catch (e) {
        await uploads.cancel(s).catch(() => undefined);
        throw e;
      }
      await store.linkBlob(name, digest);
    },
  };
}
