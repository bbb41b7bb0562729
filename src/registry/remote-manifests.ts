/**
 * Manifests on a remote repository: GET/HEAD with an Accept header naming every manifest type mpk
 * reads (docker-registry answers 404 to an OCI manifest without it), PUT with the exact bytes and
 * Content-Type, DELETE. Every manifest read is capped at 4 MiB and checked against the digest
 * asked for, or against Docker-Content-Digest when fetched by tag.
 * Reference: https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pulling-manifests
 */
import { PackError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { digestBytes, isDigest, parseDigest } from '../oci/digest.js';
import { isManifestLike, MAX_MANIFEST_BYTES, parseManifest } from '../oci/manifest.js';
import { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST } from '../oci/media-types.js';
import { responseError } from './errcode.js';
import { discard, readBody, type HttpResponse } from './transport.js';
import type { RepoContext } from './repo-context.js';

export const MANIFEST_ACCEPT = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST].join(', ');

export interface FetchedManifest {
  desc: Descriptor;
  bytes: Buffer;
  /** Present when the registry said the manifest refers to a subject it indexed (OCI-Subject). */
  subjectHeader?: string;
}

/**
 * The Content-Type when it names a manifest or index type; otherwise (`application/json`, or the
 * `text/plain` registry.ollama.ai sends) undefined, and the document's own mediaType decides.
 */
function mediaTypeOf(res: HttpResponse): string | undefined {
  const ct = res.headers['content-type'];
  const t = ct ? ct.split(';')[0]!.trim() : undefined;
  return t && isManifestLike(t) ? t : undefined;
}

function headerOf(res: HttpResponse, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function where(ctx: RepoContext, reference: string): string {
  return `${ctx.host}/${ctx.name}${isDigest(reference) ? '@' : ':'}${reference}`;
}

/** GET a manifest by tag or digest, verified. */
export async function getManifest(ctx: RepoContext, reference: string, signal?: AbortSignal): Promise<FetchedManifest> {
  const res = await ctx.client.request(ctx.host, {
    method: 'GET',
    path: ctx.path(`manifests/${reference}`),
    headers: { accept: MANIFEST_ACCEPT },
    scopes: ctx.pull,
    signal,
  });
  if (res.status !== 200) throw await responseError('GET', res, where(ctx, reference));
  const bytes = await readBody(res, MAX_MANIFEST_BYTES);
  const header = headerOf(res, 'docker-content-digest');
  const expected = isDigest(reference) ? reference : header && isDigest(header) ? header : undefined;
  const algorithm = expected ? parseDigest(expected).algorithm : 'sha256';
  const digest = digestBytes(bytes, algorithm);
  if (expected && digest !== expected) {
    throw new PackError('DIGEST_MISMATCH', `${where(ctx, reference)}: manifest has digest ${digest}, expected ${expected}`, {
      hint: 'the registry or a proxy changed the manifest; pull by digest from a trusted registry',
    });
  }
  const parsed = parseManifest(bytes, mediaTypeOf(res), where(ctx, reference));
  const desc: Descriptor = { mediaType: parsed.mediaType, digest, size: bytes.length };
  const at = parsed.kind === 'manifest' ? parsed.manifest.artifactType : parsed.index.artifactType;
  if (at) desc.artifactType = at;
  return { desc, bytes };
}

/** HEAD a manifest: its descriptor, or undefined when absent. Falls back to GET when the registry omits the digest. */
export async function headManifest(ctx: RepoContext, reference: string, signal?: AbortSignal): Promise<Descriptor | undefined> {
  const res = await ctx.client.request(ctx.host, {
    method: 'HEAD',
    path: ctx.path(`manifests/${reference}`),
    headers: { accept: MANIFEST_ACCEPT },
    scopes: ctx.pull,
    signal,
  });
  await discard(res);
  if (res.status === 404) return undefined;
  if (res.status !== 200) throw await responseError('HEAD', res, where(ctx, reference));
  const digest = headerOf(res, 'docker-content-digest');
  const size = Number(res.headers['content-length']);
  const mediaType = mediaTypeOf(res);
  if (digest && isDigest(digest) && Number.isSafeInteger(size) && mediaType) {
    if (isDigest(reference) && digest !== reference) {
      throw new PackError('DIGEST_MISMATCH', `${where(ctx, reference)}: registry reports digest ${digest}`);
    }
    return { mediaType, digest, size };
  }
  return (await getManifest(ctx, reference, signal)).desc;
}

/** PUT manifest bytes under a tag or their digest; returns the OCI-Subject header if any. */
export async function putManifest(ctx: RepoContext, desc: Descriptor, bytes: Uint8Array, reference: string, signal?: AbortSignal): Promise<string | undefined> {
  const res = await ctx.client.request(ctx.host, {
    method: 'PUT',
    path: ctx.path(`manifests/${reference}`),
    headers: { 'content-type': desc.mediaType },
    body: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    scopes: ctx.push,
    signal,
  });
  if (res.status !== 201) throw await responseError('PUT', res, where(ctx, reference));
  await discard(res);
  const got = headerOf(res, 'docker-content-digest');
  if (got && isDigest(got) && got !== desc.digest && parseDigest(got).algorithm === parseDigest(desc.digest).algorithm) {
    throw new PackError('DIGEST_MISMATCH', `${where(ctx, reference)}: the registry stored the manifest as ${got}, not ${desc.digest}`);
  }
  const subject = res.headers['oci-subject'];
  return typeof subject === 'string' ? subject : undefined;
}

export async function deleteManifest(ctx: RepoContext, digest: string, signal?: AbortSignal): Promise<void> {
  const res = await ctx.client.request(ctx.host, { method: 'DELETE', path: ctx.path(`manifests/${digest}`), scopes: ctx.del, signal });
  if (res.status !== 202 && res.status !== 200 && res.status !== 204) throw await responseError('DELETE', res, where(ctx, digest));
  await discard(res);
}
