/**
 * Digests: `algorithm:encoded`, sha256 written, sha256 and sha512 read; a streaming digester
 * that checks size and digest as the bytes pass.
 * Reference: https://github.com/opencontainers/image-spec/blob/v1.1.1/descriptor.md#digests
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { PackError } from '../errors.js';

export type DigestAlgorithm = 'sha256' | 'sha512';
const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };
const DIGEST_RE = /^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;

export interface ParsedDigest {
  algorithm: DigestAlgorithm;
  hex: string;
}

/** Validates a digest string; throws INVALID_DIGEST naming it. */
export function parseDigest(digest: string): ParsedDigest {
  const m = typeof digest === 'string' ? DIGEST_RE.exec(digest) : null;
  if (!m) {
    throw new PackError('INVALID_DIGEST', `${JSON.stringify(digest)}: not a digest`, {
      hint: 'write a digest as sha256:<64 lowercase hex digits>',
    });
  }
  const algorithm = m[1] as DigestAlgorithm;
  const hex = m[2]!;
  const want = HEX_LENGTH[algorithm];
  if (want === undefined) {
    throw new PackError('INVALID_DIGEST', `${digest}: unsupported digest algorithm ${algorithm}`, {
      hint: 'use sha256 (or sha512)',
    });
  }
  if (hex.length !== want || !/^[0-9a-f]+$/.test(hex)) {
    throw new PackError('INVALID_DIGEST', `${digest}: a ${algorithm} digest has ${want} lowercase hex digits`, {
      hint: `write it as ${algorithm}:<${want} hex digits>`,
    });
  }
  return { algorithm, hex };
}

export function isDigest(digest: string): boolean {
  try {
    parseDigest(digest);
    return true;
  } catch {
    return false;
  }
}

/** sha256 of bytes, as `sha256:<hex>`. */
export function digestBytes(data: Uint8Array | string, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

/** Incremental digester that also counts bytes. */
export class Digester {
  private readonly hash: Hash;
  size = 0;
  constructor(readonly algorithm: DigestAlgorithm = 'sha256') {
    this.hash = createHash(algorithm);
  }
  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
    this.size += chunk.byteLength;
  }
  digest(): string {
    return `${this.algorithm}:${this.hash.digest('hex')}`;
  }
}

export interface Expected {
  digest: string;
  size: number;
}

/**
 * A Transform that passes bytes through and fails as soon as more than `size` bytes pass, or at the
 * end when the count or the digest differ. Never trusts `size` for an allocation.
 */
export class VerifyStream extends Transform {
  private readonly digester: Digester;
  constructor(private readonly expected: Expected) {
    super();
    this.digester = new Digester(parseDigest(expected.digest).algorithm);
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.digester.update(chunk);
    if (this.digester.size > this.expected.size) {
      cb(sizeMismatch(this.expected, this.digester.size, true));
      return;
    }
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    cb(checkDigest(this.expected, this.digester));
  }
}

/** null when the digester saw exactly the expected bytes, else the error to raise. */
export function checkDigest(expected: Expected, d: Digester): PackError | null {
  if (d.size !== expected.size) return sizeMismatch(expected, d.size, false);
  const got = d.digest();
  if (got !== expected.digest) {
    return new PackError('DIGEST_MISMATCH', `${expected.digest}: content has digest ${got}`, {
      hint: 'the content is corrupt or was changed; fetch or build it again',
    });
  }
  return null;
}

function sizeMismatch(expected: Expected, got: number, atLeast: boolean): PackError {
  return new PackError(
    'SIZE_MISMATCH',
    `${expected.digest}: expected ${expected.size} bytes, got ${atLeast ? 'more than ' : ''}${atLeast ? expected.size : got}`,
    { hint: 'the content is truncated or was changed; fetch or build it again' },
  );
}
