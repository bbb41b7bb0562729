/**
 * An Ollama models directory: `$OLLAMA_MODELS`, else `~/.ollama/models`.
 *   manifests/<host>/<namespace>/<model>/<tag>      the manifest bytes (a tag is a file)
 *   manifests-v2/<host>/<namespace>/<model>/<tag>   newer Ollama: a link to the manifest stored as a blob
 *   blobs/sha256-<hex>                              layers, configs (and, newer, manifests)
 * Host defaults to registry.ollama.ai (ollama.com in manifests-v2), namespace to library, tag to
 * latest. Names are checked by Ollama's rules before they touch a path, so none can escape the
 * directory (`../x` is refused).
 * Reference: ../shared/reference/peer-formats.md §2.4 (ollama manifest/paths.go, types/model/name.go).
 */
import { lstat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { PackError, fsError } from '../errors.js';
import { readSmallFile } from '../internal/file-read.js';
import { parseDigest } from '../oci/digest.js';
import { MAX_MANIFEST_BYTES } from '../oci/manifest.js';

export const OLLAMA_DEFAULT_HOST = 'registry.ollama.ai';
/** The host manifests-v2 uses for the default (public) registry. */
export const OLLAMA_V2_HOST = 'ollama.com';
export const OLLAMA_DEFAULT_NAMESPACE = 'library';
export const OLLAMA_DEFAULT_TAG = 'latest';

export interface OllamaName {
  host: string;
  namespace: string;
  model: string;
  tag: string;
}

/** `--models DIR`, else `$OLLAMA_MODELS`, else `~/.ollama/models`. */
export function ollamaModelsDir(env: NodeJS.ProcessEnv, flag?: string, cwd = process.cwd()): string {
  if (flag) return resolve(cwd, flag);
  if (env.OLLAMA_MODELS) return resolve(cwd, env.OLLAMA_MODELS);
  return join(env.HOME || homedir(), '.ollama', 'models');
}

const HOST_RE = /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,349}$/;
const NAMESPACE_RE = /^[A-Za-z0-9_][A-Za-z0-9_-]{0,79}$/;
const PART_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}$/;

/** `[host/][namespace/]model[:tag]`, by Ollama's rules; INVALID_REFERENCE names the bad part. */
export function parseOllamaName(input: string): OllamaName {
  const bad = (why: string): never => {
    throw new PackError('INVALID_REFERENCE', `invalid Ollama model name ${JSON.stringify(input)}: ${why}`, {
      hint: 'write it as [host/][namespace/]model[:tag], e.g. llama3.2:1b; parts are letters, digits, _ . - (no leading . or -)',
    });
  };
  let s = input.replace(/^https?:\/\//, '');
  let tag = OLLAMA_DEFAULT_TAG;
  const colon = s.lastIndexOf(':');
  if (colon > s.lastIndexOf('/')) {
    tag = s.slice(colon + 1);
    s = s.slice(0, colon);
  }
  const parts = s.split('/');
  if (parts.length > 3) bad('too many / separated parts');
  const model = parts.pop()!;
  const namespace = parts.pop() ?? OLLAMA_DEFAULT_NAMESPACE;
  const host = parts.pop() ?? OLLAMA_DEFAULT_HOST;
  if (!PART_RE.test(model)) bad(`model ${JSON.stringify(model)} is not valid`);
  if (!PART_RE.test(tag)) bad(`tag ${JSON.stringify(tag)} is not valid`);
  if (!NAMESPACE_RE.test(namespace)) bad(`namespace ${JSON.stringify(namespace)} is not valid`);
  if (!HOST_RE.test(host) || host.includes('..')) bad(`host ${JSON.stringify(host)} is not valid`);
  return { host, namespace, model, tag };
}

export function isDefaultHost(host: string): boolean {
  return host.toLowerCase() === OLLAMA_DEFAULT_HOST || host.toLowerCase() === OLLAMA_V2_HOST;
}

/** The shortest form Ollama shows: `llama3.2:1b`, `ns/model:tag`, `host/ns/model:tag`. */
export function formatOllamaName(n: OllamaName): string {
  if (!isDefaultHost(n.host)) return `${n.host}/${n.namespace}/${n.model}:${n.tag}`;
  return n.namespace === OLLAMA_DEFAULT_NAMESPACE ? `${n.model}:${n.tag}` : `${n.namespace}/${n.model}:${n.tag}`;
}

/** `manifests/<host>/<namespace>/<model>/<tag>`: the form every Ollama version reads. */
export function legacyManifestPath(dir: string, n: OllamaName): string {
  return join(dir, 'manifests', n.host, n.namespace, n.model, n.tag);
}

/** `manifests-v2/...`, where a newer Ollama looks first. */
export function v2ManifestPath(dir: string, n: OllamaName): string {
  return join(dir, 'manifests-v2', isDefaultHost(n.host) ? OLLAMA_V2_HOST : n.host, n.namespace, n.model, n.tag);
}

/** Where Ollama looks for a name, in its order: manifests-v2, then manifests (both default host names). */
export function manifestCandidates(dir: string, n: OllamaName): string[] {
  const out = [v2ManifestPath(dir, n), legacyManifestPath(dir, n)];
  if (isDefaultHost(n.host)) {
    const alt = n.host.toLowerCase() === OLLAMA_DEFAULT_HOST ? OLLAMA_V2_HOST : OLLAMA_DEFAULT_HOST;
    out.push(legacyManifestPath(dir, { ...n, host: alt }));
  }
  return out;
}

/** `blobs/sha256-<hex>`; only sha256 digests (all Ollama writes). */
export function blobFile(dir: string, digest: string): string {
  const { algorithm, hex } = parseDigest(digest);
  if (algorithm !== 'sha256') {
    throw new PackError('UNSUPPORTED', `${digest}: Ollama stores only sha256 blobs`, { hint: 'Ollama models name their blobs by sha256 only: this model cannot go into or come from an Ollama directory' });
  }
  return join(dir, 'blobs', `sha256-${hex}`);
}

/** The manifest of a name: its path and bytes (≤ 4 MiB). NOT_FOUND lists where it looked. */
export async function readOllamaManifest(dir: string, n: OllamaName): Promise<{ path: string; bytes: Buffer }> {
  const tried = manifestCandidates(dir, n);
  for (const path of tried) {
    try {
      const s = await lstat(path);
      if (s.isDirectory()) continue;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') continue;
      throw fsError(e, path);
    }
    // A manifests-v2 entry is a symbolic link to its blob. Read without blocking (a FIFO is refused)
    // and never past the manifest limit, whatever the file is.
    const bytes = await readSmallFile(path, MAX_MANIFEST_BYTES, {
      what: 'cannot read Ollama manifest',
      label: 'Ollama manifest',
      sizeHint: `manifests are a few KB: the models directory is damaged; run ollama pull ${formatOllamaName(n)} again`,
      notFile: { code: 'IO', hint: `a manifest is a file: remove this entry and run ollama pull ${formatOllamaName(n)} again` },
    });
    return { path, bytes };
  }
  throw new PackError('NOT_FOUND', `${formatOllamaName(n)}: no such model in ${dir}`, {
    hint: `looked for ${tried.map((p) => p.slice(dir.length + 1)).join(', ')}; check the name (ollama list), or give --models DIR (default $OLLAMA_MODELS, else ~/.ollama/models)`,
  });
}
