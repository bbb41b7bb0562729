/**
 * Referrers: the v1.1 API (`GET /v2/<name>/referrers/<digest>`), and for registries without it
 * (docker-registry 2.8 answers a plain-text 404) the tag schema: an index tagged `sha256-<hex>`
 * listing the manifests whose subject is that digest, which the client keeps up to date on push.
 * Reference: https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#listing-referrers
 */
import { PackError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { digestBytes, parseDigest } from '../oci/digest.js';
import { MAX_MANIFEST_BYTES, parseManifest, type Index, type Manifest } from '../oci/manifest.js';
import { OCI_INDEX } from '../oci/media-types.js';
import { responseError } from './errcode.js';
import { getManifest, putManifest } from './remote-manifests.js';
import { nextLink } from './remote-tags.js';
import { readBody } from './transport.js';
import type { RepoContext } from './repo-context.js';

/** `sha256:abc…` → `sha256-abc…` (the fallback tag). */
export function referrersTag(digest: string): string {
  const { algorithm, hex } = parseDigest(digest);
  return `${algorithm}-${hex}`.slice(0, 128);
}

/** Pages followed at most (each ≤ 4 MiB): a registry's list cannot keep us forever. */
const MAX_PAGES = 1000;

/**
 * The referrers of `subject`: every page of the API's answer (a registry may cut a long list and
 * link the rest with `Link: <…>; rel="next"`), else the fallback tag's index.
 */
export async function listReferrers(ctx: RepoContext, subject: string, artifactType?: string, signal?: AbortSignal): Promise<Descriptor[]> {
  const q = artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : '';
  let path: string | undefined = ctx.path(`referrers/${subject}${q}`);
  const out: Descriptor[] = [];
  const visited = new Set<string>();
  for (let page = 0; path !== undefined; page++) {
    if (page >= MAX_PAGES || visited.has(path)) throw new PackError('REGISTRY', `${ctx.host}/${ctx.name}: the referrers of ${subject} link page after page (${page} read); the registry's paging is broken`);
    visited.add(path);
    const res = await ctx.client.request(ctx.host, { method: 'GET', path, headers: { accept: OCI_INDEX }, scopes: ctx.pull, signal });
    const ct = String(res.headers['content-type'] ?? '');
    if (res.status === 200 && ct.startsWith(OCI_INDEX)) {
      const parsed = parseManifest(await readBody(res, MAX_MANIFEST_BYTES), OCI_INDEX, `${ctx.name} referrers of ${subject}`);
      const all = parsed.kind === 'index' ? parsed.index.manifests : [];
      out.push(...(res.headers['oci-filters-applied'] ? all : all.filter((d) => !artifactType || d.artifactType === artifactType)));
      path = nextLink(res.headers.link);
      continue;
    }
    // A later page that fails is an error; only the first answer may send us to the fallback.
    if (page > 0 || (res.status !== 404 && res.status !== 200)) throw await responseError('GET', res, `${ctx.name} referrers of ${subject}`);
    res.body.destroy();
    const index = await fallbackIndex(ctx, subject, signal);
    return (index?.manifests ?? []).filter((d) => !artifactType || d.artifactType === artifactType);
  }
  return out;
}

async function fallbackIndex(ctx: RepoContext, subject: string, signal?: AbortSignal): Promise<Index | undefined> {
  try {
    const m = await getManifest(ctx, referrersTag(subject), signal);
    const parsed = parseManifest(m.bytes, m.desc.mediaType);
    return parsed.kind === 'index' ? parsed.index : undefined;
  } catch (e) {
    if ((e as PackError).code === 'NOT_FOUND') return undefined;
    throw e;
  }
}

/**
 * After pushing a manifest with a subject to a registry that did not answer OCI-Subject: adds it
 * to the `sha256-<hex>` index (read, add if missing, write back).
 */
export async function addToFallbackIndex(ctx: RepoContext, desc: Descriptor, doc: Manifest | Index, signal?: AbortSignal): Promise<void> {
  if (!doc.subject) return;
  const index: Index = (await fallbackIndex(ctx, doc.subject.digest, signal)) ?? { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] };
  if (index.manifests.some((m) => m.digest === desc.digest)) return;
  const entry: Descriptor = { mediaType: desc.mediaType, digest: desc.digest, size: desc.size };
  const artifactType = doc.artifactType ?? ('config' in doc ? doc.config.mediaType : undefined);
  if (artifactType) entry.artifactType = artifactType;
  if (doc.annotations) entry.annotations = doc.annotations;
  const next: Index = { ...index, manifests: [...index.manifests, entry] }; // a parse's answer is shared: not changed
  const bytes = Buffer.from(JSON.stringify(next));
  await putManifest(ctx, { mediaType: OCI_INDEX, digest: digestBytes(bytes), size: bytes.length }, bytes, referrersTag(doc.subject.digest), signal);
}
