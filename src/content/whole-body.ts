/**
 * A byte stream whose content is already whole in memory: a small blob's answer, cut from a
 * pipelined connection's bytes. It reads as any Readable; a reader that knows it (the store's
 * gather of small blobs) takes `bytes` instead, without the stream's events and async iteration
 * (~25 µs per blob here, on a pull that is mostly blobs of a few hundred bytes).
 */
import { Readable } from 'node:stream';

export class WholeBody extends Readable {
  constructor(readonly bytes: Buffer) {
    super();
  }

  override _read(): void {
    this.push(this.bytes);
    this.push(null);
  }
}
