/**
 * Request paths → routes. Repository names contain slashes, so each route is matched by its
 * suffix (`/blobs/uploads/<id>` before `/blobs/<digest>`), and the name is what precedes it.
 * Every name, tag, digest and upload id is validated here or by the helpers below before any of
 * it reaches the file system.
 * Reference: https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#endpoints
 */
import { parseDigest, type ParsedDigest } from '../oci/digest.js';
import { ServeError, digestInvalid } from './errors.js';

/** The spec's `<name>` grammar (v1.1: `__` and runs of `-` separate too). */
const NAME_RE = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
export const MAX_NAME_LENGTH = 255;
const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export type Route =
  | { kind: 'base' }
  | { kind: 'catalog' }
  | { kind: 'healthz' }
  | { kind: 'token' }
  | { kind: 'tags'; name: string }
  | { kind: 'manifest'; name: string; reference: string }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'uploads'; name: string }
  | { kind: 'upload'; name: string; id: string }
  | { kind: 'referrers'; name: string; digest: string }
  | { kind: 'unknown' };

export type RouteKind = Route['kind'];

const SUFFIXES: Array<[RegExp, (name: string, last: string) => Route]> = [
  [/^\/v2\/(.+)\/tags\/list$/, (name) => ({ kind: 'tags', name })],
  [/^\/v2\/(.+)\/manifests\/([^/]+)$/, (name, reference) => ({ kind: 'manifest', name, reference })],
  [/^\/v2\/(.+)\/blobs\/uploads\/?$/, (name) => ({ kind: 'uploads', name })],
  [/^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/, (name, id) => ({ kind: 'upload', name, id })],
  [/^\/v2\/(.+)\/blobs\/([^/]+)$/, (name, digest) => ({ kind: 'blob', name, digest })],
  [/^\/v2\/(.+)\/referrers\/([^/]+)$/, (name, digest) => ({ kind: 'referrers', name, digest })],
];

/** Splits a request target into its decoded path and its query. */
export function splitTarget(target: string): { path: string; query: URLSearchParams } {
  const q = target.indexOf('?');
  const rawPath = q < 0 ? target : target.slice(0, q);
  let path: string;
  try {
    // Digests may arrive as sha256%3A…; names and tags never need escapes.
    path = rawPath.includes('%') ? decodeURIComponent(rawPath) : rawPath;
  } catch {
    throw new ServeError(400, 'NAME_INVALID', 'the request path is not valid percent-encoding');
  }
  return { path, query: new URLSearchParams(q < 0 ? '' : target.slice(q + 1)) };
}

/** The route of a decoded path; a route with an invalid repository name is a 400 NAME_INVALID. */
export function route(path: string): Route {
  if (path === '/v2/' || path === '/v2') return { kind: 'base' };
  if (path === '/v2/_catalog') return { kind: 'catalog' };
  if (path === '/healthz') return { kind: 'healthz' };
  if (path === '/token') return { kind: 'token' };
  if (!path.startsWith('/v2/') || path.includes('\0')) return { kind: 'unknown' };
  for (const [re, make] of SUFFIXES) {
    const m = re.exec(path);
    if (!m) continue;
    const r = make(m[1]!, m[2] ?? '');
    checkName(m[1]!);
    return r;
  }
  return { kind: 'unknown' };
}

export function isValidName(name: string): boolean {
  return name.length <= MAX_NAME_LENGTH && NAME_RE.test(name);
}

export function checkName(name: string): string {
  if (!isValidName(name)) {
    throw new ServeError(400, 'NAME_INVALID', {
      name: name.length > 300 ? `${name.slice(0, 300)}…` : name,
      reason: name.length > MAX_NAME_LENGTH ? `longer than ${MAX_NAME_LENGTH} characters` : 'path components are lowercase letters and digits joined by . _ __ or -, separated by /',
    });
  }
  return name;
}

export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

/** A digest from the outside, parsed (sha256 or sha512), or 400 DIGEST_INVALID. */
export function checkDigest(digest: string): ParsedDigest {
  try {
    return parseDigest(digest);
  } catch (e) {
    throw digestInvalid(digest, e);
  }
}

/** A manifest reference: a digest (it has a ':') or a tag; anything else is a 400. */
export function parseReference(reference: string): { tag: string } | { digest: string; parsed: ParsedDigest } {
  if (reference.includes(':')) return { digest: reference, parsed: checkDigest(reference) };
  if (!isValidTag(reference)) {
    throw new ServeError(400, 'MANIFEST_INVALID', { reference, reason: 'a tag is 1 to 128 of [a-zA-Z0-9_.-], not starting with . or -' });
  }
  return { tag: reference };
}

/**
 * A reference to look up (GET, HEAD, DELETE): a digest is parsed as by `parseReference` (400
 * DIGEST_INVALID when malformed), but a string that cannot be a tag names nothing: undefined, for a
 * 404 MANIFEST_UNKNOWN, as docker-registry answers (the conformance suite asks for
 * `.INVALID_MANIFEST_NAME`). Only a PUT, which would create it, is told the tag is invalid (400).
 */
export function lookupReference(reference: string): ReturnType<typeof parseReference> | undefined {
  if (!reference.includes(':') && !isValidTag(reference)) return undefined;
  return parseReference(reference);
}

export function isUploadId(id: string): boolean {
  return UUID_RE.test(id);
}
