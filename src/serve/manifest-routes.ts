/**
 * Manifests by tag or digest (end-3, end-7, end-9): GET and HEAD answer the bytes as pushed with
 * the media type they were pushed with; PUT validates (≤ 4 MiB, a manifest or index media type,
 * the digest when addressed by digest, every config/layer/child present in the repository) and
 * answers `OCI-Subject` for a manifest with a subject; DELETE by digest removes the manifest and
 * the tags that point at it, by tag only the tag.
 */
import { hasErrorCode } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { digestBytes } from '../oci/digest.js';
import { MAX_MANIFEST_BYTES, isManifestLike, parseManifest, type ParsedManifest } from '../oci/manifest.js';
import type { RequestCtx } from './context.js';
import { ServeError, manifestUnknown, unsupported } from './errors.js';
import { mediaTypeOf, readBody, send } from './http-util.js';
import { nestedDeeperThan } from './json-depth.js';
import { lookupReference, parseReference } from './router.js';

/** Arrays and objects nested deeper than this are refused (a manifest needs 4 or 5). */
const MAX_JSON_DEPTH = 64;

/** Content-Types that say nothing about the manifest kind: the document's mediaType decides. */
const GENERIC_TYPES = new Set(['application/json', 'application/octet-stream', 'text/plain']);

export async function getManifest(ctx: RequestCtx, name: string, reference: string): Promise<void> {
  const ref = lookupReference(reference);
  if (!ref) throw manifestUnknown(reference);
  const digest = 'tag' in ref ? await ctx.store.resolveTag(name, ref.tag) : ref.digest;
  const m = digest === undefined ? undefined : await ctx.store.getManifest(name, digest);
  if (!m) throw manifestUnknown(reference);
  send(ctx.req, ctx.res, 200, { 'content-type': m.mediaType, 'docker-content-digest': m.digest, etag: `"${m.digest}"` }, m.bytes);
}

export async function putManifest(ctx: RequestCtx, name: string, reference: string): Promise<void> {
  const ref = parseReference(reference);
  const bytes = await readBody(ctx.req, MAX_MANIFEST_BYTES);
  const declared = mediaTypeOf(ctx.req.headers['content-type']);
  const given = declared && !GENERIC_TYPES.has(declared) ? declared : undefined;
  if (given && !isManifestLike(given)) {
    throw new ServeError(400, 'MANIFEST_INVALID', { reason: `Content-Type ${given} is not an OCI or Docker v2 manifest or index` });
  }
  // Before JSON.parse: a document nested without bound is refused by a scan, not by a stack overflow.
  if (nestedDeeperThan(bytes, MAX_JSON_DEPTH)) throw new ServeError(400, 'MANIFEST_INVALID', { reason: `the JSON is nested deeper than ${MAX_JSON_DEPTH} levels` });
  let parsed: ParsedManifest;
  try {
    parsed = parseManifest(bytes, given, 'manifest');
  } catch (e) {
    if (hasErrorCode(e, 'SIZE_EXCEEDS_LIMIT')) throw new ServeError(413, 'MANIFEST_INVALID', { reason: (e as Error).message });
    throw new ServeError(400, 'MANIFEST_INVALID', { reason: (e as Error).message });
  }
  const digest = digestBytes(bytes, 'digest' in ref ? ref.parsed.algorithm : 'sha256');
  if ('digest' in ref && ref.digest !== digest) {
    throw new ServeError(400, 'DIGEST_INVALID', { digest: ref.digest, reason: `the manifest has digest ${digest}` });
  }
  const subject = parsed.kind === 'manifest' ? parsed.manifest.subject : parsed.index.subject;
  await ctx.gate.withShared(async () => {
    await checkReferences(ctx, name, parsed);
    await ctx.store.putManifest(name, { digest, mediaType: parsed.mediaType, bytes }, parsed, 'tag' in ref ? ref.tag : undefined);
  });
  ctx.onRepoChange?.(name);
  send(ctx.req, ctx.res, 201, {
    location: `/v2/${name}/manifests/${digest}`,
    'docker-content-digest': digest,
    ...(subject ? { 'oci-subject': subject.digest } : {}),
  });
}

/**
 * Every descriptor but the subject must name content of this repository, with its size; an
 * index's entries must be manifests or indexes pushed here (a layer or config blob uploaded to the
 * repository is not one, whatever media type the entry claims).
 */
async function checkReferences(ctx: RequestCtx, name: string, parsed: ParsedManifest): Promise<void> {
  const index = parsed.kind === 'index';
  const refs: Descriptor[] = index ? parsed.index.manifests : [parsed.manifest.config, ...parsed.manifest.layers];
  const wanted = refs.filter((d) => !d.urls?.length); // non-distributable layers live elsewhere
  const BATCH = 32;
  for (let i = 0; i < wanted.length; i += BATCH) {
    const part = wanted.slice(i, i + BATCH);
    const sizes = await Promise.all(part.map((d) => (index ? childSize(ctx, name, d.digest) : ctx.store.contentSize(name, d.digest))));
    part.forEach((d, j) => {
      const size = sizes[j];
      if (size === undefined) throw new ServeError(400, 'MANIFEST_BLOB_UNKNOWN', { digest: d.digest });
      if (size === 'blob') throw new ServeError(400, 'MANIFEST_INVALID', { digest: d.digest, reason: `index entry manifests[${i + j}] is a blob of this repository, not a manifest or index` });
      if (size !== d.size) throw new ServeError(400, 'MANIFEST_INVALID', { digest: d.digest, reason: `the descriptor says ${d.size} bytes; the registry holds ${size}` });
    });
  }
}

/** An index entry's size when it is a manifest or index of `name`; 'blob' when it is only a blob there. */
async function childSize(ctx: RequestCtx, name: string, digest: string): Promise<number | 'blob' | undefined> {
  const m = await ctx.store.getManifest(name, digest);
  if (m && isManifestLike(m.mediaType)) return m.bytes.length;
  return (await ctx.store.blobSize(name, digest)) === undefined ? undefined : 'blob';
}

export async function deleteManifest(ctx: RequestCtx, name: string, reference: string): Promise<void> {
  if (ctx.deletes === 'none') throw unsupported('deleting is disabled on this registry');
  const ref = lookupReference(reference);
  if (!ref) throw manifestUnknown(reference);
  if ('tag' in ref) {
    if (ctx.deletes !== 'all') throw unsupported('deleting tags is disabled on this registry; delete the manifest by digest');
    if (!(await ctx.store.deleteTag(name, ref.tag))) throw manifestUnknown(reference);
  } else if (!(await ctx.store.deleteManifest(name, ref.digest))) {
    throw manifestUnknown(reference);
  }
  ctx.onRepoChange?.(name);
  send(ctx.req, ctx.res, 202);
}
