/**
 * The registry's bucket: `s3://BUCKET[/PREFIX]` parsed and checked, an S3 client set up for
 * S3-compatible stores (path-style addressing with an endpoint; checksums only when required,
 * which Ceph 16 and MinIO-era stores need), and the few object operations the registry uses,
 * with absence and failed preconditions turned into values. Credentials come the AWS way
 * (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, the instance role...): the SDK's chain.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { PackError } from '../../errors.js';

export interface S3Location {
  bucket: string;
  /** '' or a prefix ending in '/'. */
  prefix: string;
}

/** `s3://BUCKET[/PREFIX]` → bucket and prefix; a USAGE error naming the flag otherwise. */
export function parseS3Url(url: string): S3Location {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(url);
  const prefix = (m?.[2] ?? '').replace(/\/+$/, '');
  const okPrefix = prefix === '' || (prefix.length <= 512 && prefix.split('/').every((p) => /^[A-Za-z0-9._-]+$/.test(p) && p !== '.' && p !== '..'));
  if (!m || !okPrefix) {
    throw new PackError('USAGE', `--storage ${JSON.stringify(url)}: not s3://BUCKET[/PREFIX]`, {
      hint: 'a bucket name of 3-63 lower-case letters, digits, dots and dashes, and a prefix of plain path components, e.g. --storage s3://models/registry',
    });
  }
  return { bucket: m[1]!, prefix: prefix ? `${prefix}/` : '' };
}

export interface S3Options {
  /** An S3-compatible endpoint (Ceph RGW, MinIO...): path-style addressing. */
  endpoint?: string;
  region?: string;
  /** Credentials given here instead of the AWS chain (tests). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

export function makeS3Client(o: S3Options, env: NodeJS.ProcessEnv = process.env): S3Client {
  if (o.endpoint !== undefined && !/^https?:\/\/[^/\s]+\/?$/.test(o.endpoint)) {
    throw new PackError('USAGE', `--s3-endpoint ${JSON.stringify(o.endpoint)}: not http(s)://HOST[:PORT]`, { hint: 'e.g. --s3-endpoint http://127.0.0.1:7480' });
  }
  // The SDK warns on every start under Node < 22 about its releases of 2027; this one is pinned.
  env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  return new S3Client({
    region: o.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
    ...(o.endpoint ? { endpoint: o.endpoint, forcePathStyle: true } : {}),
    ...(o.credentials ? { credentials: o.credentials } : {}),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

const status = (e: unknown): number | undefined => (e as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
export const isNotFound = (e: unknown): boolean => status(e) === 404 || ['NoSuchKey', 'NotFound', 'NoSuchUpload'].includes((e as Error)?.name);
export const isPreconditionFailed = (e: unknown): boolean => status(e) === 412 || (e as Error)?.name === 'PreconditionFailed';

export interface ObjectInfo {
  key: string;
  size: number;
  etag: string;
  lastModified: number;
}

/** The largest object CopyObject copies in one request; larger ones are copied in parts. */
const MAX_SINGLE_COPY = 5 * 1024 ** 3;
const COPY_PART = 1024 ** 3;

/** One bucket and prefix: keys given here are relative to the prefix. */
export class Bucket {
  constructor(
    readonly client: S3Client,
    readonly loc: S3Location,
  ) {}

  key(rel: string): string {
    return this.loc.prefix + rel;
  }

  /** A small object's bytes and ETag, or undefined; refused past `max` bytes. */
  async getSmall(rel: string, max = 4 * 1024 * 1024): Promise<{ bytes: Buffer; etag: string; lastModified: number } | undefined> {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.loc.bucket, Key: this.key(rel) }));
      if ((r.ContentLength ?? 0) > max) {
        (r.Body as Readable | undefined)?.destroy();
        throw new Error(`s3://${this.loc.bucket}/${this.key(rel)}: ${r.ContentLength} bytes, more than the ${max} expected`);
      }
      const bytes = Buffer.from(await r.Body!.transformToByteArray());
      return { bytes, etag: r.ETag ?? '', lastModified: r.LastModified?.getTime() ?? 0 };
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  /** A GET of bytes `start..end` (inclusive) as a stream. */
  async getStream(rel: string, start?: number, end?: number): Promise<Readable | undefined> {
    try {
      const range = start !== undefined ? { Range: `bytes=${start}-${end ?? ''}` } : {};
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.loc.bucket, Key: this.key(rel), ...range }));
      return r.Body as Readable;
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  /** Writes an object whole. `ifMatch`/`ifNoneMatch: '*'` make it conditional: false when the condition failed. */
  async put(rel: string, body: Buffer | string, cond: { ifMatch?: string; ifNoneMatch?: '*' } = {}): Promise<string | false> {
    try {
      const r = await this.client.send(
        new PutObjectCommand({
          Bucket: this.loc.bucket,
          Key: this.key(rel),
          Body: body,
          ContentLength: Buffer.byteLength(body),
          // Unquoted: Ceph 16 compares If-Match with the quotes kept and fails every quoted one (412).
          ...(cond.ifMatch ? { IfMatch: cond.ifMatch.replace(/"/g, '') } : {}),
          ...(cond.ifNoneMatch ? { IfNoneMatch: cond.ifNoneMatch } : {}),
        }),
      );
      return r.ETag ?? '';
    } catch (e) {
      if (isPreconditionFailed(e) || (cond.ifMatch && isNotFound(e))) return false;
      throw e;
    }
  }

  async head(rel: string): Promise<ObjectInfo | undefined> {
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.loc.bucket, Key: this.key(rel) }));
      return { key: rel, size: r.ContentLength ?? 0, etag: r.ETag ?? '', lastModified: r.LastModified?.getTime() ?? 0 };
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  /** Deletes an object; S3 does not say whether it was there. */
  async del(rel: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.loc.bucket, Key: this.key(rel) }));
  }

  /** Objects under `rel` (keys relative to the bucket prefix), in key order, `after` excluded. */
  async *list(rel: string, after?: string): AsyncGenerator<ObjectInfo> {
    let token: string | undefined;
    do {
      const r = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.loc.bucket,
          Prefix: this.key(rel),
          ...(token ? { ContinuationToken: token } : after ? { StartAfter: this.key(after) } : {}),
        }),
      );
      for (const o of r.Contents ?? []) {
        yield { key: o.Key!.slice(this.loc.prefix.length), size: o.Size ?? 0, etag: o.ETag ?? '', lastModified: o.LastModified?.getTime() ?? 0 };
      }
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
  }

  /** Server-side copy (in 1 GiB parts past 5 GiB): the bytes never pass through the registry. */
  async copy(fromRel: string, toRel: string, size: number): Promise<void> {
    const source = `${this.loc.bucket}/${this.key(fromRel)}`;
    if (size <= MAX_SINGLE_COPY) {
      await this.client.send(new CopyObjectCommand({ Bucket: this.loc.bucket, Key: this.key(toRel), CopySource: encodeURI(source) }));
      return;
    }
    const id = await this.createMultipart(toRel);
    try {
      const parts: Array<{ PartNumber: number; ETag: string }> = [];
      for (let n = 1, at = 0; at < size; n++, at += COPY_PART) {
        const r = await this.client.send(
          new UploadPartCopyCommand({ Bucket: this.loc.bucket, Key: this.key(toRel), UploadId: id, PartNumber: n, CopySource: encodeURI(source), CopySourceRange: `bytes=${at}-${Math.min(at + COPY_PART, size) - 1}` }),
        );
        parts.push({ PartNumber: n, ETag: r.CopyPartResult?.ETag ?? '' });
      }
      await this.completeMultipart(toRel, id, parts);
    } catch (e) {
      await this.abortMultipart(toRel, id).catch(() => undefined);
      throw e;
    }
  }

  async createMultipart(rel: string): Promise<string> {
    const r = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.loc.bucket, Key: this.key(rel) }));
    return r.UploadId!;
  }

  async uploadPart(rel: string, uploadId: string, n: number, body: Buffer): Promise<string> {
    const r = await this.client.send(new UploadPartCommand({ Bucket: this.loc.bucket, Key: this.key(rel), UploadId: uploadId, PartNumber: n, Body: body, ContentLength: body.length }));
    return r.ETag ?? '';
  }

  /** A whole object of this bucket as part `n` (server-side). */
  async copyPart(rel: string, uploadId: string, n: number, fromRel: string): Promise<string> {
    const r = await this.client.send(new UploadPartCopyCommand({ Bucket: this.loc.bucket, Key: this.key(rel), UploadId: uploadId, PartNumber: n, CopySource: encodeURI(`${this.loc.bucket}/${this.key(fromRel)}`) }));
    return r.CopyPartResult?.ETag ?? '';
  }

  async completeMultipart(rel: string, uploadId: string, parts: Array<{ PartNumber: number; ETag: string }>): Promise<void> {
    await this.client.send(new CompleteMultipartUploadCommand({ Bucket: this.loc.bucket, Key: this.key(rel), UploadId: uploadId, MultipartUpload: { Parts: parts } }));
  }

  async abortMultipart(rel: string, uploadId: string): Promise<void> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.loc.bucket, Key: this.key(rel), UploadId: uploadId }));
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }

  /** Multipart uploads begun under `rel` (the collector aborts those a dead replica left). */
  async *listMultipart(rel: string): AsyncGenerator<{ key: string; uploadId: string; initiated: number }> {
    let keyMarker: string | undefined;
    let idMarker: string | undefined;
    for (;;) {
      const r = await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.loc.bucket, Prefix: this.key(rel), ...(keyMarker ? { KeyMarker: keyMarker, UploadIdMarker: idMarker } : {}) }));
      for (const u of r.Uploads ?? []) yield { key: u.Key!.slice(this.loc.prefix.length), uploadId: u.UploadId!, initiated: u.Initiated?.getTime() ?? 0 };
      if (!r.IsTruncated) return;
      keyMarker = r.NextKeyMarker;
      idMarker = r.NextUploadIdMarker;
    }
  }
}
