/**
 * A GGUF header's metadata small enough to travel with a model: describeGguf's summary (arrays over
 * 64 items as `{type, elementType, length}`), strings over 32 KiB as `{type: 'string', length}`,
 * and, while the whole is over 256 Ki characters of JSON, its largest values summarised the same way;
 * if that is not enough (tens of thousands of keys, or huge key names), the largest entries are left
 * out. The result is plain JSON in header order, the same for the same header, never over the bound.
 */
import { describeGguf, type GgufSummaryValue } from './gguf-describe.js';
import type { GgufHeader } from './gguf.js';
import { ggufTypeName, GgufType, type GgufArray } from './gguf-value.js';

export interface GgufStringSummary {
  type: 'string';
  /** UTF-8 bytes */
  length: number;
}

export type GgufMetadataValue = GgufSummaryValue | GgufStringSummary;
export type GgufMetadata = Record<string, GgufMetadataValue>;

export interface GgufMetadataLimits {
  /** arrays longer than this are summarised (default 64) */
  maxArrayItems?: number;
  /** strings longer than this many UTF-8 bytes are summarised (default 32 KiB) */
  maxStringBytes?: number;
  /** the whole, as JSON text, at most this many characters (default 256 Ki) */
  maxTotalBytes?: number;
}

export const GGUF_METADATA_LIMITS = { maxArrayItems: 64, maxStringBytes: 32 * 1024, maxTotalBytes: 256 * 1024 } as const;

/** The metadata of one header (for shards: the first, which holds the model's keys), bounded as above. */
export function ggufMetadata(header: GgufHeader, limits: GgufMetadataLimits = {}): GgufMetadata {
  const maxItems = limits.maxArrayItems ?? GGUF_METADATA_LIMITS.maxArrayItems;
  const maxString = limits.maxStringBytes ?? GGUF_METADATA_LIMITS.maxStringBytes;
  const maxTotal = limits.maxTotalBytes ?? GGUF_METADATA_LIMITS.maxTotalBytes;
  const summary = describeGguf(header, { maxArrayItems: maxItems }).metadataSummary;
  const out: GgufMetadata = {};
  const sizes = new Map<string, number>();
  let total = 2;
  for (const [k, v0] of Object.entries(summary)) {
    const v = typeof v0 === 'string' && Buffer.byteLength(v0) > maxString ? stringSummary(v0) : v0;
    define(out, k, v);
    const size = JSON.stringify(k).length + 1 + JSON.stringify(v).length + 1;
    sizes.set(k, size);
    total += size;
  }
  if (total <= maxTotal) return out;
  // Largest first (then by key, so the choice never depends on anything but the header).
  const order = [...sizes].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  for (const [k, size] of order) {
    if (total <= maxTotal) break;
    const kv = header.metadata.get(k)!;
    if (kv.type !== GgufType.STRING && kv.type !== GgufType.ARRAY) continue; // numbers and bools are small
    const small: GgufMetadataValue =
      kv.type === GgufType.STRING ? stringSummary(kv.value as string) : { type: 'array', elementType: ggufTypeName((kv.value as GgufArray).elementType), length: (kv.value as GgufArray).items.length };
    const newSize = JSON.stringify(k).length + 1 + JSON.stringify(small).length + 1;
    if (newSize >= size) continue;
    define(out, k, small);
    sizes.set(k, newSize);
    total += newSize - size;
  }
  if (total <= maxTotal) return out;
  // Still over: the rest is keys and scalars (a header of many keys, or very long key names).
  // The largest entries go (same order rule), so the bound holds whatever the header holds.
  for (const [k, size] of [...sizes].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))) {
    if (total <= maxTotal) break;
    delete out[k];
    total -= size;
  }
  return out;
}

function stringSummary(s: string): GgufStringSummary {
  return { type: 'string', length: Buffer.byteLength(s) };
}

/** A key such as "__proto__" stays an ordinary member. */
function define(o: GgufMetadata, k: string, v: GgufMetadataValue): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}
