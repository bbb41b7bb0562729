/**
 * The verdict over a model's signature candidates: it passes when any bundle verifies with the
 * key (DSSE over an in-toto statement) and its statement is about exactly this manifest and its
 * files. Otherwise the most telling failure is thrown: one of a bundle signed by the key (altered,
 * for another model, manifest or files changed) before an unreadable bundle, before "signed by
 * another key"; none at all is SIGNATURE_MISSING (exit 12).
 */
import type { KeyObject } from 'node:crypto';
import { PackError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { ModelFile } from '../modelpack/model-view.js';
import { parseBundle } from './bundle.js';
import type { Candidate } from './bundle-source.js';
import { IN_TOTO_PAYLOAD_TYPE, verifyEnvelope } from './dsse.js';
import { compareStatement, parseStatement } from './statement.js';

export interface VerifyKey {
  publicKey: KeyObject;
  keyId: string;
}

export interface Verdict {
  /** The referrer (signature artifact) that verified. */
  signature: string;
  /** Where it was found: `the store` or `HOST/NAME`. */
  source: string;
  keyId: string;
  /** The signer's name for the model in the statement. */
  signedName: string;
  /** Signature artifacts the model has (the first that verifies ends the search). */
  found: number;
}

const short = (d: string) => d.slice(0, 19);

/** The verdict, and the bytes of the bundle that verified. */
export async function judge(cands: Candidate[], key: VerifyKey, subject: Descriptor, name: string, files: ModelFile[], looked: string[]): Promise<{ verdict: Verdict; bundle: Buffer }> {
  const model = `${name}@${short(subject.digest)}…`;
  if (cands.length === 0) {
    throw new PackError('SIGNATURE_MISSING', `${model}: not signed (no signature in ${looked.join(' or ')})`, {
      hint: 'sign it: mpk sign REF --key KEY.pem (or ask its publisher for a signed one)',
    });
  }
  const failures: { rank: number; err: PackError }[] = [];
  const otherKeys = new Set<string>();
  for (const c of cands) {
    const where = `(signature ${short(c.referrer)}… in ${c.source})`;
    let bytes: Buffer;
    try {
      bytes = await c.load();
    } catch (e) {
      if (!(e instanceof PackError) || e.code === 'ABORTED') throw e;
      failures.push({ rank: 1, err: e }); // unreadable: a network error or a damaged artifact
      continue;
    }
    try {
      const bundle = parseBundle(bytes, `signature ${c.referrer}`);
      if (!verifyEnvelope(bundle.envelope, key.publicKey)) {
        if (bundle.keyHint && bundle.keyHint !== key.keyId) {
          otherKeys.add(bundle.keyHint);
          failures.push({ rank: 0, err: wrongKey(model, key, otherKeys) });
        } else {
          failures.push({
            rank: 2,
            err: new PackError('SIGNATURE_INVALID', `${model}: the signature ${where} does not verify with key ${short(key.keyId)}…`, {
              hint: 'its statement or signature was altered after signing; do not trust this model',
            }),
          });
        }
        continue;
      }
      if (bundle.envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE) {
        throw new PackError('BUNDLE_INVALID', `${model}: the signature ${where} signs ${JSON.stringify(bundle.envelope.payloadType)}, not an in-toto statement`);
      }
      const st = parseStatement(bundle.envelope.payload, `signature ${c.referrer}`);
      compareStatement(st, subject.digest, name, files, where);
      return { verdict: { signature: c.referrer, source: c.source, keyId: key.keyId, signedName: st.name, found: cands.length }, bundle: bytes };
    } catch (e) {
      if (!(e instanceof PackError)) throw e;
      failures.push({ rank: e.code === 'BUNDLE_INVALID' ? 1 : 3, err: e });
    }
  }
  const worst = failures.reduce((a, b) => (b.rank > a.rank ? b : a));
  if (worst.err.code === 'SIGNATURE_WRONG_KEY') worst.err = wrongKey(model, key, otherKeys);
  throw worst.err;
}

function wrongKey(model: string, key: VerifyKey, others: Set<string>): PackError {
  const ids = [...others].map((k) => `${k.slice(0, 12)}…`).join(', ');
  return new PackError('SIGNATURE_WRONG_KEY', `${model}: signed by key ${ids}, not by the given key ${key.keyId.slice(0, 12)}…`, {
    hint: "verify with the signer's public key, or have the model signed with yours",
  });
}
