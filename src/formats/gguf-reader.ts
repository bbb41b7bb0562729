/**
 * The byte reader under readGgufHeader: a forward-only reader over a file handle with one
 * refillable buffer, bounds checked against the file size and the header limit before anything
 * is allocated; every failure is a PackError naming the file and the byte.
 */
import type { FileHandle } from 'node:fs/promises';
import { PackError } from '../errors.js';
import { FIXED_SIZE, GgufType } from './gguf-value.js';

export const CORRUPT_HINT = 'the file is damaged or incomplete: download or convert it again';
export const LIMIT_HINT = 'if the file is genuine, raise the limit (readGgufHeader options) or report it';

/** A forward-only reader over a file handle with one refillable buffer (64 KiB, then chunkSize, or one string). */
export class Reader {
  /** what is being read, for error messages */
  what = 'the header';
  private buf: Buffer;
  private start = 0; // next unread byte in buf
  private end = 0; // end of valid bytes in buf
  private filePos = 0; // file offset of buf[end]

  constructor(
    private readonly fh: FileHandle,
    readonly path: string,
    private readonly fileSize: number,
    private readonly chunkSize: number,
    private readonly maxHeaderBytes: number,
  ) {
    // small first: most files are only asked for their first bytes (and small headers fit)
    this.buf = Buffer.allocUnsafe(Math.max(64, Math.min(chunkSize, fileSize, 64 * 1024)));
  }

  /** file offset of the next unread byte */
  get pos(): number {
    return this.filePos - (this.end - this.start);
  }

  buffered(): number {
    return this.end - this.start;
  }

  corrupt(reason: string, withPos = true): PackError {
    const at = withPos ? ` at byte ${this.pos}` : '';
    return new PackError('CORRUPT', `${this.path}: not a valid GGUF file${at}: ${reason}`, { hint: CORRUPT_HINT });
  }

  /**
   * A count read from the file: each item takes at least minBytes, so more than the rest of the
   * file holds is corruption; more than `limit` is over a limit.
   */
  checkCount(count: bigint, minBytes: number, limit: number, what: string, totalLimit = limit): void {
    const left = this.fileSize - this.pos;
    if (count * BigInt(minBytes) > BigInt(left)) {
      throw this.corrupt(`${this.what} claims ${count} ${what}, more than the remaining ${left} bytes of the file can hold (truncated or corrupt)`);
    }
    if (count > BigInt(limit)) {
      throw new PackError('SIZE_EXCEEDS_LIMIT', `${this.path}: ${this.what} has ${count} ${what}, over mpk's limit of ${totalLimit}`, { hint: LIMIT_HINT });
    }
  }

  /** Makes n bytes available in the buffer, reading from the file as needed. */
  async need(n: number): Promise<void> {
    if (this.end - this.start >= n) return;
    const pos = this.pos;
    if (pos + n > this.fileSize) throw this.truncated(n);
    if (pos + n > this.maxHeaderBytes) {
      throw new PackError('SIZE_EXCEEDS_LIMIT', `${this.path}: the GGUF header is larger than mpk's limit of ${this.maxHeaderBytes} bytes (reading ${this.what})`, {
        hint: LIMIT_HINT,
      });
    }
    const have = this.end - this.start;
    const want = Math.max(n, Math.min(this.chunkSize, this.fileSize - pos));
    if (want > this.buf.length) {
      const bigger = Buffer.allocUnsafe(want);
      this.buf.copy(bigger, 0, this.start, this.end);
      this.buf = bigger;
    } else if (this.start > 0) {
      this.buf.copy(this.buf, 0, this.start, this.end);
    }
    this.start = 0;
    this.end = have;
    while (this.end < n) {
      // never buffer past the header limit, so every byte beyond it goes through the check above
      const room = Math.min(this.buf.length - this.end, this.maxHeaderBytes - this.filePos);
      const { bytesRead } = await this.fh.read(this.buf, this.end, room, this.filePos);
      if (bytesRead === 0) throw this.truncated(n); // the file shrank while we read it
      this.end += bytesRead;
      this.filePos += bytesRead;
    }
  }

  private truncated(n: number): PackError {
    return new PackError(
      'CORRUPT',
      `${this.path}: not a valid GGUF file: truncated: ${this.what} needs ${n} bytes at byte ${this.pos}, but the file has ${this.fileSize} bytes`,
      { hint: CORRUPT_HINT },
    );
  }

  bytes(n: number): Buffer {
    const b = this.buf.subarray(this.start, this.start + n);
    this.start += n;
    return b;
  }

  u32(): number {
    const v = this.buf.readUInt32LE(this.start);
    this.start += 4;
    return v;
  }

  u64(): bigint {
    const v = this.buf.readBigUInt64LE(this.start);
    this.start += 8;
    return v;
  }

  valueType(): GgufType {
    const t = this.buf.readUInt32LE(this.start);
    if (t > GgufType.FLOAT64) throw this.corrupt(`${this.what} has unknown value type ${t}`);
    this.start += 4;
    return t as GgufType;
  }

  /** A fixed-size value already in the buffer. */
  scalar(type: GgufType): number | bigint | boolean {
    const b = this.buf;
    const p = this.start;
    this.start += FIXED_SIZE[type];
    switch (type) {
      case GgufType.UINT8:
        return b[p]!;
      case GgufType.INT8:
        return b.readInt8(p);
      case GgufType.UINT16:
        return b.readUInt16LE(p);
      case GgufType.INT16:
        return b.readInt16LE(p);
      case GgufType.UINT32:
        return b.readUInt32LE(p);
      case GgufType.INT32:
        return b.readInt32LE(p);
      case GgufType.FLOAT32:
        return b.readFloatLE(p);
      case GgufType.BOOL: {
        const v = b[p]!;
        if (v > 1) {
          this.start = p;
          throw this.corrupt(`${this.what} has a bool of ${v}, neither 0 nor 1`);
        }
        return v === 1;
      }
      case GgufType.UINT64:
        return b.readBigUInt64LE(p);
      case GgufType.INT64:
        return b.readBigInt64LE(p);
      case GgufType.FLOAT64:
        return b.readDoubleLE(p);
      default:
        throw new Error(`not a fixed-size GGUF type: ${type}`);
    }
  }

  /** A u64 length as a number: exact below 2^53, and beyond that larger than any limit anyway. */
  private length(at: number): number {
    return this.buf.readUInt32LE(at + 4) * 0x100000000 + this.buf.readUInt32LE(at);
  }

  /** The next string when it is already buffered (the fast path for string arrays), else undefined. */
  hasString(max: number): string | undefined {
    if (this.end - this.start < 8) return undefined;
    const len = this.length(this.start);
    if (len > max || len > this.end - this.start - 8) return undefined;
    const s = this.start + 8;
    this.start = s + len;
    return this.buf.toString('utf8', s, this.start);
  }

  async string(max: number): Promise<string> {
    await this.need(8);
    const len = this.length(this.start);
    const left = this.fileSize - this.pos - 8;
    if (len > left) {
      throw this.corrupt(`${this.what} is a string of ${this.buf.readBigUInt64LE(this.start)} bytes, but only ${left} bytes of the file remain (truncated or corrupt)`);
    }
    if (len > max) {
      throw new PackError('SIZE_EXCEEDS_LIMIT', `${this.path}: ${this.what} is a string of ${len} bytes, over mpk's limit of ${max}`, { hint: LIMIT_HINT });
    }
    await this.need(8 + len);
    this.start += 8;
    return this.bytes(len).toString('utf8');
  }
}

/** A name from the file, fit for a message: single-quoted, control characters escaped, at most 100 characters. */
export function quote(s: string): string {
  const short = s.length > 100 ? `${s.slice(0, 100)}…` : s;
  return `'${short.replace(/[\u0000-\u001f\u007f-\u009f'\\]/g, (c) => (c === "'" || c === '\\' ? `\\${c}` : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`))}'`;
}
