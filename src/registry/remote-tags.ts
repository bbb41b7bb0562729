/**
 * Tag listing with Link pagination (`<…?n=100&last=x>; rel="next"`, relative or absolute).
 * Reference: https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#listing-tags
 */
import { PackError } from '../errors.js';
import { responseError } from './errcode.js';
import { readBody } from './transport.js';
import type { RepoContext } from './repo-context.js';

const MAX_PAGE_BYTES = 4 * 1024 * 1024;
const MAX_PAGES = 10_000;

export async function* listTags(ctx: RepoContext, opts: { last?: string; pageSize?: number; signal?: AbortSignal } = {}): AsyncGenerator<string> {
  const q = new URLSearchParams();
  if (opts.pageSize) q.set('n', String(opts.pageSize));
  if (opts.last) q.set('last', opts.last);
  let path: string | undefined = ctx.path(`tags/list${q.size ? `?${q}` : ''}`);
  const visited = new Set<string>();
  for (let page = 0; path && page < MAX_PAGES && !visited.has(path); page++) {
    visited.add(path); // a registry that links a page to itself must not loop us
    const res = await ctx.client.request(ctx.host, { method: 'GET', path, scopes: ctx.pull, signal: opts.signal });
    if (res.status !== 200) throw await responseError('GET', res, `${ctx.host}/${ctx.name}: tags`);
    const body = await readBody(res, MAX_PAGE_BYTES);
    let doc: { tags?: unknown };
    try {
      doc = JSON.parse(body.toString('utf8'));
    } catch {
      throw new PackError('REGISTRY', `${ctx.host}/${ctx.name}: tag list is not JSON`);
    }
    if (doc.tags !== null && doc.tags !== undefined && !Array.isArray(doc.tags)) throw new PackError('REGISTRY', `${ctx.host}/${ctx.name}: tag list has no tags array`);
    // Only strings that are valid tags: they end up on terminals and in references.
    for (const t of (doc.tags as unknown[] | null) ?? []) if (typeof t === 'string' && /^[\w][\w.-]{0,127}$/.test(t)) yield t;
    path = nextLink(res.headers.link);
  }
}

/** The `rel="next"` target of a Link header, if any. */
export function nextLink(link: string | string[] | undefined): string | undefined {
  const text = Array.isArray(link) ? link.join(', ') : link;
  if (!text) return undefined;
  for (const part of text.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
    if (m && /\brel="?next"?/.test(m[2]!)) return m[1];
  }
  return undefined;
}
