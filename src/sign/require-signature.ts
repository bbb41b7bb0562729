/**
 * `--require-signature PUB.pem` for `mpk pull` and `mpk run`: the signature is checked before
 * anything is stored. The registry's reference is resolved once and pinned by digest (from an
 * index, the variant is chosen first, as pull chooses); that manifest's signature must verify
 * with the key (verify-signature.ts); only then is exactly that digest pulled, and the verified
 * bundle is kept beside it in the store (a nameless referrer), so a later check needs no network.
 */
import { PackError, hasErrorCode } from '../errors.js';
import { chooseManifest, type Selection } from '../graph/select.js';
import { parseManifest } from '../oci/manifest.js';
import { isIndexMediaType } from '../oci/media-types.js';
import { formatReference, parseReference, type Reference } from '../oci/reference.js';
import { RemoteRepository } from '../registry/repository.js';
import type { LocalStore } from '../store/store.js';
import { writeLocalReferrer } from '../transfer/referrers.js';
import { makeClient, pullDestination, pullModel, type TransferOptions, type TransferResult } from '../transfer/transfer.js';
import { BUNDLE_MEDIA_TYPE } from './bundle.js';
import { loadVerifyKey } from './keys.js';
import type { ModelSubject } from './model-subject.js';
import { bundleFile } from './sign.js';
import type { VerifyKey } from './verdict.js';
import { checkStoredFiles, verifyRemote, verifyStored, type SignatureReport } from './verify-signature.js';

export interface CheckedRemote {
  /** `HOST/NAME@sha256:…`: the verified manifest, to pull by digest. */
  pinned: string;
  /** The root was an index and a variant was chosen from it. */
  fromIndex: boolean;
  report: SignatureReport;
  subject: ModelSubject;
  bundle: Buffer;
}

function remoteRef(reference: string): Reference & { registry: string } {
  const ref = parseReference(reference);
  if (!ref.registry) throw new PackError('USAGE', `${reference}: no registry host to pull from`, { hint: 'write HOST[:PORT]/NAME:TAG, e.g. localhost:5000/models/llama:v1' });
  return ref as Reference & { registry: string };
}

/** Resolves, chooses a variant of an index (opts.select), and verifies that manifest's signature in the registry. */
export async function checkRemoteSignature(reference: string, key: VerifyKey, opts: TransferOptions = {}): Promise<CheckedRemote> {
  const ref = remoteRef(reference);
  const client = makeClient(opts);
  const call = opts.signal ? { signal: opts.signal } : {};
  try {
    const repo = RemoteRepository.fromReference(client, ref);
    let target = await repo.resolve(ref.digest ?? ref.tag ?? 'latest', call);
    let fromIndex = false;
    if (isIndexMediaType(target.mediaType)) {
      const parsed = parseManifest((await repo.fetchManifest(target, call)).bytes, target.mediaType, target.digest);
      if (parsed.kind === 'index') {
        const choice = chooseManifest(parsed.index, opts.select ?? {}, formatReference(ref));
        opts.onSelect?.(choice);
        target = choice.descriptor;
        fromIndex = true;
      }
    }
    const pinned = formatReference({ ...ref, tag: undefined, digest: target.digest } as Reference);
    const { report, subject, bundle } = await verifyRemote(repo, pinned, key, opts);
    return { pinned, fromIndex, report: { ...report, reference }, subject, bundle };
  } finally {
    client.close();
  }
}

/** Keeps a verified bundle in the store as a referrer of the stored model. */
async function keepSignature(store: LocalStore, subject: ModelSubject, bundle: Buffer): Promise<void> {
  await writeLocalReferrer(store, subject.descriptor, BUNDLE_MEDIA_TYPE, [bundleFile(bundle)]);
}

/** `mpk pull REF --require-signature PUB.pem`: verify in the registry, then pull that digest; nothing is stored on failure. */
export async function pullSigned(store: LocalStore, reference: string, keyPath: string, opts: TransferOptions = {}): Promise<{ result: TransferResult; report: SignatureReport }> {
  const key = await loadVerifyKey(keyPath);
  const checked = await checkRemoteSignature(reference, key, opts);
  const { onSelect: _chosen, ...rest } = opts;
  const result = await pullModel(store, checked.pinned, pullDestination(reference), { ...rest, select: checked.fromIndex ? {} : (opts.select ?? {}) });
  await keepSignature(store, checked.subject, checked.bundle);
  return { result: { ...result, source: formatReference(remoteRef(reference)) }, report: checked.report };
}

/**
 * `mpk run REF --require-signature PUB.pem`: a model in the store is checked against the store's
 * signatures, and for a registry reference also the registry's (for the stored digest); a model
 * not yet stored is checked in the registry and pulled by digest through `pull`.
 */
export async function requireSignature(
  store: LocalStore,
  reference: string,
  keyPath: string,
  opts: TransferOptions,
  pull: (pinned: string, destination: string, select: Selection) => Promise<void>,
): Promise<SignatureReport> {
  const key = await loadVerifyKey(keyPath);
  const ref = parseReference(reference);
  let stored;
  try {
    stored = await store.resolve(reference);
  } catch (e) {
    if (!hasErrorCode(e, 'NOT_FOUND') || !ref.registry) throw e;
  }
  if (!ref.registry) return verifyStored(store, reference, key);
  if (stored) {
    try {
      return await verifyStored(store, reference, key);
    } catch (e) {
      if (!hasErrorCode(e, 'SIGNATURE_MISSING')) throw e;
    }
    // Not signed in the store: the registry may hold the stored digest's signature.
    const checked = await checkRemoteSignature(formatReference({ ...ref, tag: undefined, digest: stored.digest } as Reference), key, opts);
    await checkStoredFiles(store, checked.subject);
    await keepSignature(store, checked.subject, checked.bundle);
    return { ...checked.report, reference };
  }
  const checked = await checkRemoteSignature(reference, key, opts);
  await pull(checked.pinned, pullDestination(reference), checked.fromIndex ? {} : (opts.select ?? {}));
  await keepSignature(store, checked.subject, checked.bundle);
  return checked.report;
}
