/**
 * HTML built by a tagged template that escapes every value it is given: only `Html` values (made
 * by `html` itself, or `trusted` for renderer output) go in unescaped. Everything a model brings
 * (names, annotations, file names) therefore passes through `esc`.
 */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text made safe for element content and quoted attribute values. */
export function esc(v: unknown): string {
  return String(v).replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

type Value = Html | string | number | boolean | null | undefined | Value[];

function part(v: Value): string {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof Html) return v.text;
  if (Array.isArray(v)) return v.map(part).join('');
  return esc(v);
}

export function html(strings: TemplateStringsArray, ...values: Value[]): Html {
  let out = strings[0]!;
  values.forEach((v, i) => (out += part(v) + strings[i + 1]!));
  return new Html(out);
}

/** Markup from a source that produced it safely (the Markdown renderer with raw HTML off). */
export function trusted(text: string): Html {
  return new Html(text);
}

/** A path made of URL-encoded segments: `/r/` + name (its slashes kept) etc. */
export function repoPath(name: string, ref?: string): string {
  const n = name.split('/').map(encodeURIComponent).join('/');
  return ref === undefined ? `/r/${n}` : `/r/${n}/-/${encodeURIComponent(ref)}`;
}

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];

/** 1234567 → "1.2 MB" (SI units, as docker and Hugging Face show sizes). */
export function formatSize(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '';
  let v = n;
  let u = 0;
  while (v >= 1000 && u < UNITS.length - 1) {
    v /= 1000;
    u++;
  }
  return u === 0 ? `${v} B` : `${v < 10 ? v.toFixed(1) : Math.round(v)} ${UNITS[u]}`;
}

/** ms since the epoch → "2026-12-03 23:41 UTC". */
export function formatDate(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '';
  return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** "sha256:abcdef…" shortened to its first 12 hex digits. */
export function shortDigest(d: string): string {
  const i = d.indexOf(':');
  return i < 0 ? d.slice(0, 12) : d.slice(i + 1, i + 13);
}
