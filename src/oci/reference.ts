/**
 * References `[host[:port]/]repository[:tag][@digest]`, by the distribution reference grammar.
 * Reference: https://github.com/distribution/reference/blob/main/reference.go
 *
 * mpk does not add `docker.io/library/`: a reference without a registry host names a model in the
 * local store only, and the first path component is a host when it has a `.` or `:` or is
 * `localhost` in any case (docker's rule, less its uppercase case: mpk says "must be lowercase"
 * instead). The host is lowercased: host names are case-insensitive.
 */
import { PackError } from '../errors.js';
import { parseDigest } from './digest.js';

export const DEFAULT_TAG = 'latest';
const MAX_NAME_LENGTH = 255;

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const HOST_RE = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:.]+\\])(?::[0-9]+)?$`);
const TAG_RE = /^[\w][\w.-]{0,127}$/;

export interface Reference {
  /** Registry host with optional port; undefined for a local-only name. */
  registry?: string;
  /** Repository path, e.g. `models/llama3`. */
  repository: string;
  tag?: string;
  digest?: string;
}

function invalid(ref: string, why: string, hint?: string): PackError {
  return new PackError('INVALID_REFERENCE', `invalid reference ${JSON.stringify(ref)}: ${why}`, {
    hint: hint ?? 'write it as [host[:port]/]name[:tag][@sha256:digest], e.g. localhost:5000/models/llama:v1',
  });
}

/** Parses a reference; with `defaultTag` (the default) a reference with neither tag nor digest gets `latest`. */
export function parseReference(input: string, opts: { defaultTag?: boolean } = {}): Reference {
  if (typeof input !== 'string' || input.length === 0) throw invalid(String(input), 'empty');
  if (/\s/.test(input)) throw invalid(input, 'contains white space');
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    try {
      parseDigest(digest);
    } catch (e) {
      throw invalid(input, (e as Error).message, 'a digest is sha256:<64 lowercase hex digits>');
    }
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.indexOf(':', lastSlash + 1);
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) {
      throw invalid(input, `tag ${JSON.stringify(tag)} is not valid`, 'a tag is up to 128 letters, digits, _ . - and does not start with . or -');
    }
  }
  if (rest.length === 0) throw invalid(input, 'no repository name');
  let registry: string | undefined;
  let repository = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first.toLowerCase() === 'localhost') {
      // Host names are case-insensitive: `LOCALHOST:5000` is localhost (plain http, the same
      // saved login, the same local name), so the host is kept in lowercase.
      registry = first.toLowerCase();
      repository = rest.slice(slash + 1);
      if (!HOST_RE.test(registry)) throw invalid(input, `registry host ${JSON.stringify(registry)} is not valid`);
    }
  }
  if (repository.length === 0) throw invalid(input, 'no repository name after the registry host');
  for (const part of repository.split('/')) {
    if (!PATH_COMPONENT.test(part)) {
      const lower = repository.toLowerCase();
      if (lower !== repository && lower.split('/').every((p) => PATH_COMPONENT.test(p))) {
        throw invalid(input, 'repository names must be lowercase', `try ${JSON.stringify(input.replace(repository, lower))}`);
      }
      throw invalid(input, `path component ${JSON.stringify(part)} is not valid`, 'use lowercase letters, digits and single . _ __ or - separators between them');
    }
  }
  const name = registry ? `${registry}/${repository}` : repository;
  if (name.length > MAX_NAME_LENGTH) throw invalid(input, `name is longer than ${MAX_NAME_LENGTH} characters`);
  if (!tag && !digest && opts.defaultTag !== false) tag = DEFAULT_TAG;
  const ref: Reference = { repository };
  if (registry) ref.registry = registry;
  if (tag) ref.tag = tag;
  if (digest) ref.digest = digest;
  return ref;
}

/** `registry/repository` or `repository`. */
export function referenceName(ref: Reference): string {
  return ref.registry ? `${ref.registry}/${ref.repository}` : ref.repository;
}

/** The canonical string form: name, then `:tag`, then `@digest`. */
export function formatReference(ref: Reference): string {
  return `${referenceName(ref)}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}
