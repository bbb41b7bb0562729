/** The JSON API behind the pages: the same data, for scripts (`/-/api/catalog`, `/-/api/r/NAME`, `/-/api/r/NAME/-/REF`). */
import type { CatalogPage, RepoEntry, TagEntry } from './catalog-index.js';
import type { ModelDetailsView } from './model-details.js';

const iso = (ms: number | undefined): string | undefined => (ms === undefined ? undefined : new Date(ms).toISOString());

function tagJson(t: TagEntry): Record<string, unknown> {
  const { kind, mediaType, size, format, paramSize, quantization, architecture, name, variants } = t.facts;
  return { tag: t.tag, digest: t.digest, pushed: iso(t.pushed), kind, mediaType, size, format, paramSize, quantization, architecture, name, variants };
}

export function catalogApi(r: CatalogPage): unknown {
  return {
    total: r.total,
    page: r.page,
    pages: r.pages,
    perPage: r.perPage,
    facets: r.facets,
    repositories: r.items.map((e) => ({ name: e.name, tags: e.tags.length, latest: e.latest ? tagJson(e.latest) : undefined })),
  };
}

export function repoApi(e: RepoEntry): unknown {
  return { name: e.name, tags: e.tags.map(tagJson) };
}

export function modelApi(d: ModelDetailsView, pull: Array<{ label: string; command: string }>): unknown {
  const { card, metadata, gguf, ...rest } = d;
  return {
    ...rest,
    metadata: Object.fromEntries(metadata),
    gguf: Object.fromEntries(gguf),
    ...(card ? { card: { path: card.path, markdown: card.markdown } } : {}),
    pull,
  };
}
