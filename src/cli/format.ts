/** Text formatting for the CLI: sizes, rates, tables, counts. Pure functions. */
import { formatParamCount } from '../formats/param-size.js';

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** 1536 → "1.5 KiB"; binary units, one decimal from KiB up. */
export function humanBytes(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${UNITS[u]}`;
}

export function humanRate(bytes: number, ms: number): string {
  return ms <= 0 ? '-' : `${humanBytes(Math.round((bytes * 1000) / ms))}/s`;
}

/** Left-aligned columns separated by three spaces, like `docker images`. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('   ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

/** "sha256:abcdef…" → "abcdef012345" (12 hex digits), as docker shows image IDs. */
export function shortDigest(d: string): string {
  return d.slice(d.indexOf(':') + 1, d.indexOf(':') + 13);
}

/** `1 file`, `2 files`, `1 entry`/`3 entries` with an explicit plural; counts are never "1 files". */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

const PARAM_SCALE: Record<string, number> = { '': 1, k: 1e3, m: 1e6, b: 1e9, g: 1e9, t: 1e12 };

/**
 * A parameter size as configs write it (`5M`, `5.00M`, `1.23 M`, `0.5B`, `7b`, `494032768`), shown
 * one way: llama.cpp's `494M`, `7.24B` (three significant digits). Anything else (`8x7B`, words)
 * is shown as written, with control characters made visible.
 */
export function paramSizeText(value: string): string {
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([kmbgt]?)\s*$/i.exec(value);
  const scale = m ? PARAM_SCALE[m[2]!.toLowerCase()] : undefined;
  const n = m && scale !== undefined ? Number(m[1]) * scale : NaN;
  if (!Number.isFinite(n)) return value.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  return formatParamCount(n);
}
