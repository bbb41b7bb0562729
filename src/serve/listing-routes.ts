/**
 * Listings: tags (end-8a/8b: sorted, `n`, `last`, Link), referrers (end-12a/12b: an image index,
 * `artifactType` filter with OCI-Filters-Applied) and `_catalog` (the repositories the caller may
 * read, paginated the same way).
 */
import { MAX_MANIFEST_BYTES } from '../oci/manifest.js';
import { OCI_INDEX } from '../oci/media-types.js';
import type { RequestCtx } from './context.js';
import { ServeError, nameUnknown } from './errors.js';
import { sendJson } from './http-util.js';
import { checkDigest } from './router.js';

/** The most entries one page gives, whatever `n` asks (the Link header leads on). */
const MAX_PAGE = 10_000;

function page(ctx: RequestCtx, all: string[], base: string): { items: string[]; link?: string } {
  const nText = ctx.query.get('n');
  const last = ctx.query.get('last');
  let n: number | undefined;
  if (nText !== null) {
    if (!/^\d{1,9}$/.test(nText)) throw new ServeError(400, 'UNSUPPORTED', { n: nText, reason: 'n must be a whole number ≥ 0' });
    n = Math.min(Number(nText), MAX_PAGE);
  }
  const after = last === null ? all : all.filter((t) => t > last);
  if (n === 0) return { items: [] };
  const size = n ?? MAX_PAGE;
  const items = after.slice(0, size);
  if (after.length <= size) return { items };
  const q = new URLSearchParams({ n: String(size), last: items[items.length - 1]! });
  return { items, link: `<${base}?${q}>; rel="next"` };
}

export async function listTags(ctx: RequestCtx, name: string): Promise<void> {
  const tags = await ctx.store.listTags(name);
  if (!tags) throw nameUnknown(name);
  const { items, link } = page(ctx, tags, `/v2/${name}/tags/list`);
  sendJson(ctx.req, ctx.res, 200, { name, tags: items }, link ? { link } : {});
}

export async function listCatalog(ctx: RequestCtx): Promise<void> {
  const repos = (await ctx.store.listRepositories()).filter((r) => ctx.auth.canPull(ctx.who, r));
  const { items, link } = page(ctx, repos, '/v2/_catalog');
  sendJson(ctx.req, ctx.res, 200, { repositories: items }, link ? { link } : {});
}

/**
 * The referrers of `digest`, as an image index of at most 4 MiB (what clients read for an index):
 * past that, a Link to the next page (`last` = the last entry given), as the spec allows.
 */
export async function listReferrers(ctx: RequestCtx, name: string, digest: string): Promise<void> {
  checkDigest(digest);
  const artifactType = ctx.query.get('artifactType');
  const filter = artifactType !== null && artifactType !== '';
  const last = ctx.query.get('last');
  const { manifests, next } = await ctx.store.listReferrers(name, digest, {
    ...(last !== null ? { after: last } : {}),
    maxBytes: MAX_MANIFEST_BYTES - 256,
    ...(filter ? { keep: (d) => d.artifactType === artifactType } : {}),
  });
  const headers: Record<string, string> = { 'content-type': OCI_INDEX };
  if (filter) headers['oci-filters-applied'] = 'artifactType';
  if (next) {
    const q = new URLSearchParams({ last: next, ...(filter ? { artifactType } : {}) });
    headers.link = `</v2/${name}/referrers/${digest}?${q}>; rel="next"`;
  }
  sendJson(ctx.req, ctx.res, 200, { schemaVersion: 2, mediaType: OCI_INDEX, manifests }, headers);
}
