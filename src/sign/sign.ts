/**
 * `mpk sign REF --key KEY.pem [--generate-key]`: a Sigstore bundle v0.3 whose DSSE envelope signs
 * an in-toto statement about the manifest REF resolves to (pinned by digest first: a tag that
 * moves meanwhile cannot make the signature cover something else) and every file of it, written
 * as a referrer of that manifest (artifact type = the bundle media type), in the store or pushed
 * to the registry. A stored model's files are checked intact before they are vouched for.
 */
import { PackError } from '../errors.js';
import { digestBytes } from '../oci/digest.js';
import type { Descriptor } from '../oci/descriptor.js';
import { ANNOTATION_TITLE } from '../oci/media-types.js';
import { formatReference, parseReference } from '../oci/reference.js';
import { RemoteRepository } from '../registry/repository.js';
import type { LocalStore } from '../store/store.js';
import { writeLocalReferrer, writeRemoteReferrer, type AttachFile } from '../transfer/referrers.js';
import { makeClient, type TransferOptions } from '../transfer/transfer.js';
import { BUNDLE_MEDIA_TYPE, bundleBytes } from './bundle.js';
import { IN_TOTO_PAYLOAD_TYPE, signEnvelope } from './dsse.js';
import { generateSigningKey, loadSigningKey, type SigningKey } from './keys.js';
import { localSubject, remoteSubject, type ModelSubject } from './model-subject.js';
import { statementBytes } from './statement.js';
import { checkStoredFiles } from './verify-signature.js';

export const BUNDLE_FILE_NAME = 'signature.sigstore.json';

export interface SignOptions extends TransferOptions {
  /** Make a new key pair at the key path (and `.pub` beside it) instead of reading one. */
  generateKey?: boolean;
}

export interface SignResult {
  reference: string;
  /** The manifest signed (pinned). */
  subject: Descriptor;
  /** The signature artifact (referrer manifest). */
  signature: Descriptor;
  keyId: string;
  files: number;
  /** With --generate-key: where the public key was written. */
  publicKey?: string;
}

/** A bundle as the one layer of a signature artifact. */
export function bundleFile(bytes: Buffer): AttachFile {
  return { name: BUNDLE_FILE_NAME, bytes, desc: { mediaType: BUNDLE_MEDIA_TYPE, digest: digestBytes(bytes), size: bytes.length, annotations: { [ANNOTATION_TITLE]: BUNDLE_FILE_NAME } } };
}

/** The bundle file for a model: its statement signed in a DSSE envelope. */
export function signatureFile(subject: ModelSubject, key: SigningKey): AttachFile {
  const env = signEnvelope(IN_TOTO_PAYLOAD_TYPE, statementBytes(subject.name, subject.descriptor, subject.files), key.privateKey);
  return bundleFile(bundleBytes({ keyHint: key.keyId, envelope: env }));
}

export async function signModel(store: LocalStore | undefined, reference: string, keyPath: string, opts: SignOptions = {}): Promise<SignResult> {
  const ref = parseReference(reference);
  if (!ref.registry && !store) throw new PackError('USAGE', `${reference}: a local name needs the local store`);
  // The model is read (and refused if unsuitable) before a key is generated.
  const client = ref.registry ? makeClient(opts) : undefined;
  try {
    const repo = client ? RemoteRepository.fromReference(client, ref) : undefined;
    const subject = repo ? await remoteSubject(repo, reference, opts.signal ? { signal: opts.signal } : {}) : await localSubject(store!, reference);
    if (!repo) await checkStoredFiles(store!, subject);
    const generated = opts.generateKey ? await generateSigningKey(keyPath) : undefined;
    const key = generated ?? (await loadSigningKey(keyPath));
    const file = signatureFile(subject, key);
    const m = repo ? await writeRemoteReferrer(repo, subject.descriptor, BUNDLE_MEDIA_TYPE, [file], opts) : await writeLocalReferrer(store!, subject.descriptor, BUNDLE_MEDIA_TYPE, [file]);
    const out: SignResult = { reference: repo ? formatReference(ref) : reference, subject: subject.descriptor, signature: m.desc, keyId: key.keyId, files: subject.files.length };
    if (generated) out.publicKey = generated.publicPath;
    return out;
  } finally {
    client?.close();
  }
}
