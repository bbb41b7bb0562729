/**
 * `mpk verify-signature REF --key PUB.pem`: is this model signed by that key? The signature
 * artifacts of the model's manifest (referrers of the Sigstore bundle type) are read from the store
 * or the registry; one must verify (see verdict.ts). For a stored model its files are also checked
 * to be the bytes their digests name (the verified-blob record, else a rehash), since the signature
 * speaks for the files.
 */
import { PackError } from '../errors.js';
import { parseReference } from '../oci/reference.js';
import { RemoteRepository } from '../registry/repository.js';
import type { LocalStore } from '../store/store.js';
import { makeClient, type TransferOptions } from '../transfer/transfer.js';
import { candidates, localSource, remoteSource } from './bundle-source.js';
import { loadVerifyKey } from './keys.js';
import { localSubject, remoteSubject, type ModelSubject } from './model-subject.js';
import { judge, type Verdict, type VerifyKey } from './verdict.js';

export interface SignatureReport extends Verdict {
  reference: string;
  digest: string;
  files: number;
}

/** Each layer blob of a stored model is present and still the bytes its digest names. */
export async function checkStoredFiles(store: LocalStore, subject: ModelSubject): Promise<void> {
  for (const f of subject.files) {
    const state = await store.blobs.state(f.layer);
    if (state === 'changed') {
      throw new PackError('SIGNATURE_FILE_CHANGED', `${subject.name}: ${f.path}: the stored bytes are no longer ${f.layer.digest}, the signed file`, {
        hint: 'the store copy was altered; mpk pull it again (or mpk verify to see all damage)',
      });
    }
    if (state === 'absent') throw new PackError('NOT_FOUND', `${subject.name}: ${f.path} (${f.layer.digest}) is missing from the store`, { hint: 'mpk pull the model again' });
  }
}

function report(reference: string, subject: ModelSubject, v: Verdict): SignatureReport {
  return { reference, digest: subject.descriptor.digest, files: subject.files.length, ...v };
}

/** Verifies a stored model against the store's signatures. */
export async function verifyStored(store: LocalStore, reference: string, key: VerifyKey): Promise<SignatureReport> {
  const subject = await localSubject(store, reference);
  const { verdict } = await judge(await candidates(localSource(store), subject.descriptor), key, subject.descriptor, subject.name, subject.files, ['the store']);
  await checkStoredFiles(store, subject);
  return report(reference, subject, verdict);
}

/** Verifies a model in a registry against the registry's signatures (nothing is stored). */
export async function verifyRemote(repo: RemoteRepository, reference: string, key: VerifyKey, opts: TransferOptions = {}): Promise<{ report: SignatureReport; subject: ModelSubject; bundle: Buffer }> {
  const subject = await remoteSubject(repo, reference, opts.signal ? { signal: opts.signal } : {});
  const source = remoteSource(repo, opts.signal);
  const { verdict, bundle } = await judge(await candidates(source, subject.descriptor), key, subject.descriptor, subject.name, subject.files, [source.label]);
  return { report: report(reference, subject, verdict), subject, bundle };
}

/** `mpk verify-signature REF --key PUB.pem`: local names in the store, HOST/NAME in the registry. */
export async function verifyModelSignature(store: LocalStore | undefined, reference: string, keyPath: string, opts: TransferOptions = {}): Promise<SignatureReport> {
  const key = await loadVerifyKey(keyPath);
  const ref = parseReference(reference);
  if (!ref.registry) {
    if (!store) throw new PackError('USAGE', `${reference}: a local name needs the local store`);
    return verifyStored(store, reference, key);
  }
  const client = makeClient(opts);
  try {
    return (await verifyRemote(RemoteRepository.fromReference(client, ref), reference, key, opts)).report;
  } finally {
    client.close();
  }
}
