/**
 * push, pull and copy of models: each is one `copy()` between two Targets, where a reference with
 * a registry host names a remote repository and one without names a model in the local store.
 *   push: store → registry      pull: registry → store      copy: any → any
 */
import { setMaxListeners } from 'node:events';
import { PackError } from '../errors.js';
import type { Target } from '../content/storage.js';
import { copy, type CopyEvent, type CopyResult } from '../graph/copy.js';
import type { Choice, Selection } from '../graph/select.js';
import { copyReferrers, planReferrers, type PlannedReferrer } from '../graph/copy-referrers.js';
import type { Descriptor } from '../oci/descriptor.js';
import { referrerSink, referrerSource } from './referrer-sides.js';
import { formatReference, parseReference, type Reference } from '../oci/reference.js';
import { DockerCredentialStore } from '../registry/auth/credentials.js';
import { RegistryClient, type ClientOptions } from '../registry/client.js';
import { RemoteRepository } from '../registry/repository.js';
import { LocalStore, defaultStoreRoot } from '../store/store.js';
import { loadMirrors, mirrorHost, type Mirrors } from './mirrors.js';
import { join } from 'node:path';

export interface TransferOptions extends ClientOptions {
  signal?: AbortSignal;
  /** Blobs in flight (default 8). */
  concurrency?: number;
  /** Upload chunk size in bytes (0: one PUT per blob; default: one PUT up to 64 MiB, one PATCH past it). */
  chunkSize?: number;
  onEvent?(ev: CopyEvent): void;
  /** Pull: which manifest of an index to take. */
  select?: Selection;
  /** Pull: told which manifest of an index was taken (with the reason when chosen by memory). */
  onSelect?(choice: Choice): void;
  /** Environment for DOCKER_CONFIG and credential helpers (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Also copy the referrers (SBOMs, signatures, …) of what is copied, recursively (`--referrers`). */
  referrers?: boolean;
  /** Pull: site caches to ask first, per upstream host (default: `$MPK_HOME/mirrors.json`). */
  mirrors?: Mirrors;
  /** Pull: a mirror failed; the next one or the upstream is asked. */
  onMirrorFailed?(mirror: string, err: unknown): void;
}

export interface TransferResult extends CopyResult {
  source: string;
  destination: string;
  seconds: number;
  /** With `referrers`: how many referrers went along (copied or already there). */
  referrers?: number;
}

interface Endpoint {
  target: Target;
  /** What to resolve or tag on this side. */
  ref: string;
  display: string;
  remote?: RemoteRepository;
}

/** Where a reference lives: `auto` = remote when it names a registry host, else the local store. */
export type Side = 'local' | 'remote' | 'auto';

function endpoint(ref: Reference, side: Side, store: LocalStore | undefined, client: RegistryClient, opts: TransferOptions): Endpoint {
  if (side === 'remote' || (side === 'auto' && ref.registry)) {
    const remote = RemoteRepository.fromReference(client, ref, opts.chunkSize === undefined ? {} : { chunkSize: opts.chunkSize });
    return { target: remote, ref: ref.digest ?? ref.tag ?? 'latest', display: formatReference(ref), remote };
  }
  if (!store) throw new PackError('USAGE', `${formatReference(ref)}: a local name needs the local store`);
  return { target: store, ref: formatReference(ref), display: formatReference(ref) };
}

/** The client every transfer uses: docker's credentials unless the caller gives its own. */
export function makeClient(opts: TransferOptions): RegistryClient {
  return new RegistryClient({ credentials: opts.credentials ?? new DockerCredentialStore({ env: opts.env ?? process.env }), ...opts });
}

/**
 * Copies the model `source` names to `destination` (either may be local or remote). A local
 * destination keeps partial downloads for the next run and checks every blob of the root.
 */
export async function transfer(
  store: LocalStore | undefined,
  source: string,
  destination: string,
  opts: TransferOptions = {},
  sides: { source: Side; destination: Side } = { source: 'auto', destination: 'auto' },
): Promise<TransferResult> {
  const started = Date.now();
  // Every request in flight listens on the signal; thousands of small blobs are not a leak.
  if (opts.signal) setMaxListeners(0, opts.signal);
  const srcRef = parseReference(source);
  let dstRef = parseReference(destination);
  if (dstRef.digest && !dstRef.tag) {
    throw new PackError('USAGE', `${destination}: the destination needs a tag, not only a digest`, { hint: 'add :TAG' });
  }
  if (dstRef.digest) dstRef = { ...dstRef, digest: undefined } as Reference;
  const client = makeClient(opts);
  try {
    const src = endpoint(srcRef, sides.source, store, client, opts);
    const dst = endpoint(dstRef, sides.destination, store, client, opts);
    const sameRegistry = src.remote && dst.remote && src.remote.host === dst.remote.host && src.remote.name !== dst.remote.name;
    const graphOpts = {
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.concurrency ? { concurrency: opts.concurrency } : {}),
      ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
      verb: dst.remote ? ('uploading' as const) : ('downloading' as const),
      revisitExistingRoot: !dst.remote,
      ...(sameRegistry ? { mountFrom: () => [src.remote!.name] } : {}),
    };
    // --referrers: the whole referrer graph is read and checked before anything is written.
    let planned: PlannedReferrer[] | undefined;
    const result = await copy(src.target, src.ref, dst.target, dst.ref, {
      ...graphOpts,
      ...(opts.select && !dst.remote ? { select: opts.select } : {}),
      ...(opts.onSelect ? { onSelect: opts.onSelect } : {}),
      sourceName: src.display,
      ...(opts.referrers ? { beforeCopy: async (root: Descriptor, bytes: Buffer) => void (planned = await planReferrers(src.target, referrerSource(src.target), root, bytes, graphOpts)) } : {}),
    });
    const out: TransferResult = { ...result, source: src.display, destination: dst.display, seconds: 0 };
    if (planned) {
      const r = await copyReferrers(src.target, dst.target, referrerSink(dst.target), planned, graphOpts);
      for (const k of Object.keys(r.stats) as (keyof typeof r.stats)[]) out.stats[k] += r.stats[k];
      out.referrers = r.referrers;
    }
    out.seconds = (Date.now() - started) / 1000;
    return out;
  } finally {
    client.close();
  }
}

/** `mpk push REF` pushes the local model REF to the registry it names; `push SRC DST` renames on the way. */
export async function pushModel(store: LocalStore, source: string, destination = source, opts: TransferOptions = {}): Promise<TransferResult> {
  if (!parseReference(destination).registry) {
    throw new PackError('USAGE', `${destination}: no registry host to push to`, {
      hint: `name the registry: mpk push ${source} HOST[:PORT]/NAME:TAG (or mpk tag it first)`,
    });
  }
  return transfer(store, source, destination, opts, { source: 'local', destination: 'remote' });
}

/** The name `mpk pull REF` stores a model under: REF with its host, a tag (from the digest when only that is given). */
export function pullDestination(source: string): string {
  const src = parseReference(source);
  return formatReference({ ...src, digest: undefined, tag: src.tag ?? (src.digest ? `sha256-${src.digest.slice(7, 19)}` : 'latest') } as Reference);
}

/** `mpk pull REF` stores the model under the same full name (host/name:tag). */
export async function pullModel(store: LocalStore, source: string, destination?: string, opts: TransferOptions = {}): Promise<TransferResult> {
  const src = parseReference(source);
  if (!src.registry) {
    throw new PackError('USAGE', `${source}: no registry host to pull from`, { hint: 'write HOST[:PORT]/NAME:TAG, e.g. localhost:5000/models/llama:v1' });
  }
  const dst = destination ?? pullDestination(source);
  // The store keeps one manifest per name: from an index, pull chooses one (or says how to).
  const o = { ...opts, select: opts.select ?? {} };
  const mirrors = (opts.mirrors ?? (await loadMirrors(join(defaultStoreRoot(opts.env ?? process.env), 'mirrors.json'))))[src.registry] ?? [];
  for (const url of mirrors) {
    const m = mirrorHost(url);
    try {
      return await transfer(store, formatReference({ ...src, registry: m.host }), dst, { ...o, plainHttp: m.plainHttp || !!opts.plainHttp }, { source: 'remote', destination: 'local' });
    } catch (e) {
      if (opts.signal?.aborted) throw e;
      opts.onMirrorFailed?.(url, e);
    }
  }
  return transfer(store, source, dst, o, { source: 'remote', destination: 'local' });
}
