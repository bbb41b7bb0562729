/** The registry on an S3 bucket (`--storage s3://BUCKET[/PREFIX]`): loaded only when asked for (backend.ts). */
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PackError } from '../../errors.js';
import { parseDigest } from '../../oci/digest.js';
import type { Backend, BackendOptions } from '../backend.js';
import { Bucket, makeS3Client, parseS3Url } from './s3-client.js';
import { collectS3Garbage } from './s3-gc.js';
import { S3Store } from './s3-store.js';
import { S3Uploads } from './s3-uploads.js';

export async function openS3(o: BackendOptions): Promise<Backend> {
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
