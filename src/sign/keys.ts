/**
 * Signing keys: ECDSA P-256 in PEM (PKCS#8 or SEC1 `EC PRIVATE KEY` as `openssl ecparam -genkey`
 * writes; SPKI `PUBLIC KEY` for verifying). A key is named by its id: the hex sha256 of its SPKI
 * DER, which is the bundle's `verificationMaterial.publicKey.hint`.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import { PackError, fsError } from '../errors.js';
import { readSmallFile } from '../internal/file-read.js';

/** A PEM key file is small; anything larger is not one. */
const MAX_KEY_FILE_BYTES = 64 * 1024;

export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  keyId: string;
}

/** The key id: hex sha256 of the public key's SPKI DER. */
export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
}

function checkP256(key: KeyObject, path: string): void {
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    const what = key.asymmetricKeyType === 'ec' ? `an EC key on ${key.asymmetricKeyDetails?.namedCurve ?? 'an unknown curve'}` : `a ${key.asymmetricKeyType ?? 'non-asymmetric'} key`;
    throw new PackError('UNSUPPORTED', `${path}: ${what}; mpk signs with ECDSA P-256`, {
      hint: 'make one: mpk sign REF --key KEY.pem --generate-key, or openssl ecparam -name prime256v1 -genkey -noout -out KEY.pem',
    });
  }
}

async function readPem(path: string): Promise<Buffer> {
  return readSmallFile(path, MAX_KEY_FILE_BYTES, {
    what: 'key',
    label: 'key file',
    sizeHint: 'give the PEM file of an ECDSA P-256 key',
    notFile: { code: 'USAGE', hint: 'give the PEM file of an ECDSA P-256 key' },
  });
}

/** The private key of `path` (and its public half); encrypted keys are refused with a hint. */
export async function loadSigningKey(path: string): Promise<SigningKey> {
  const pem = await readPem(path);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: pem, format: 'pem' });
  } catch (e) {
    const encrypted = /ENCRYPTED/.test(pem.toString('latin1'));
    throw new PackError('USAGE', `${path}: ${encrypted ? 'an encrypted private key' : 'not a PEM private key'}`, {
      cause: e,
      hint: encrypted
        ? 'decrypt it first: openssl pkcs8 -in KEY.pem -out plain.pem (keep it 0600)'
        : 'give the private key (PEM) to sign with; the public key (.pub) is for verify-signature',
    });
  }
  checkP256(privateKey, path);
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, keyId: keyIdOf(publicKey) };
}

/** A public key (SPKI PEM); a private key file is accepted too (its public half is used). */
export async function loadVerifyKey(path: string): Promise<{ publicKey: KeyObject; keyId: string }> {
  const pem = await readPem(path);
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: pem, format: 'pem' });
  } catch (e) {
    throw new PackError('USAGE', `${path}: not a PEM public key`, { cause: e, hint: 'give the signer\'s public key, e.g. KEY.pub written by mpk sign --generate-key' });
  }
  checkP256(publicKey, path);
  return { publicKey, keyId: keyIdOf(publicKey) };
}

/** Writes a new P-256 key pair: `path` (PKCS#8 PEM, mode 0600) and `path` with `.pub` (SPKI PEM); never overwrites. */
export async function generateSigningKey(path: string): Promise<SigningKey & { publicPath: string }> {
  const publicPath = `${path.replace(/\.pem$/i, '')}.pub`;
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  // Private first, created exclusively: a key that exists is never replaced.
  await writeNew(path, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600);
  await writeNew(publicPath, publicKey.export({ type: 'spki', format: 'pem' }) as string, 0o644).catch(async (e) => {
    await rm(path, { force: true }); // no half pair: the private key just made goes too
    throw e;
  });
  return { privateKey, publicKey, keyId: keyIdOf(publicKey), publicPath };
}

async function writeNew(path: string, text: string, mode: number): Promise<void> {
  let fh;
  try {
    fh = await open(path, 'wx', mode);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new PackError('ALREADY_EXISTS', `${path}: already exists; --generate-key never overwrites a key`, { hint: 'drop --generate-key to sign with it, or choose another --key path' });
    }
    throw fsError(e, path);
  }
  try {
    await fh.writeFile(text);
    await fh.chmod(mode); // the umask may have narrowed it; 0600 stays 0600 either way
  } finally {
    await fh.close();
  }
}
