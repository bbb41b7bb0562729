/** Catalog URLs from the outside, validated: page paths (`/`, `/r/NAME`, `/r/NAME/-/REF`, their `/-/api/` twins) and the catalog query. */
import { parseDigest } from '../../oci/digest.js';
import { isValidName, isValidTag } from '../router.js';
import type { CatalogQuery, SortKey } from './catalog-index.js';

export type PagePath = { kind: 'catalog' } | { kind: 'repo'; name: string } | { kind: 'model'; name: string; ref: string };

const MAX_TEXT = 200;

/** The page a (decoded) path names, or undefined when it names none (or an invalid name or reference). */
export function parsePagePath(path: string): PagePath | undefined {
  const p = path.startsWith('/-/api/') ? path.slice('/-/api'.length) : path;
  if (p === '/' || p === '/catalog') return { kind: 'catalog' };
  if (!p.startsWith('/r/')) return undefined;
  const rest = p.slice(3);
  const sep = rest.indexOf('/-/');
  const name = sep < 0 ? rest.replace(/\/$/, '') : rest.slice(0, sep);
  if (!isValidName(name)) return undefined;
  if (sep < 0) return { kind: 'repo', name };
  const ref = rest.slice(sep + 3);
  if (isValidTag(ref)) return { kind: 'model', name, ref };
  try {
    parseDigest(ref);
    return { kind: 'model', name, ref };
  } catch {
    return undefined;
  }
}

function text(q: URLSearchParams, key: string): string | undefined {
  const v = q.get(key);
  return v === null || v === '' ? undefined : v.slice(0, MAX_TEXT);
}

export function parseCatalogQuery(q: URLSearchParams): CatalogQuery {
  const out: CatalogQuery = {};
  const t = text(q, 'q');
  if (t) out.text = t;
  const arch = text(q, 'arch');
  if (arch) out.architecture = arch;
  const format = text(q, 'format');
  if (format) out.format = format;
  const quant = text(q, 'quant');
  if (quant) out.quantization = quant;
  const sort = q.get('sort');
  if (sort === 'name' || sort === 'size' || sort === 'date') out.sort = sort as SortKey;
  const pageText = q.get('page');
  if (pageText && /^\d{1,6}$/.test(pageText)) out.page = Number(pageText);
  const n = q.get('n');
  if (n && /^\d{1,4}$/.test(n)) out.perPage = Number(n);
  return out;
}

/** A path to return to after signing in: local only (`/…`, never `//host` or `/\host`). */
export function safeNext(next: string | null | undefined): string {
  if (!next || next.length > 2000 || !next.startsWith('/') || next.startsWith('//') || next.includes('\\') || /[\u0000-\u001f]/.test(next)) return '/';
  return next;
}
