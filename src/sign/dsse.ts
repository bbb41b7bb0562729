/**
 * DSSE (Dead Simple Signing Envelope) v1: the signature covers PAE(payloadType, payload), never
 * the bare payload, so a payload cannot be reinterpreted as another type. ECDSA P-256 with
 * SHA-256, the signature DER-encoded (as Sigstore writes it).
 * Reference: https://github.com/secure-systems-lab/dsse/blob/v1.0.0/protocol.md
 */
import { sign, verify, type KeyObject } from 'node:crypto';

export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';

export interface Envelope {
  payload: Buffer;
  payloadType: string;
  signatures: { sig: Buffer; keyid: string }[];
}

/** `DSSEv1 <len(type)> <type> <len(body)> <body>`, lengths as ASCII decimal byte counts. */
export function pae(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload]);
}

/** One signature over the payload. `keyid` is left empty: the bundle's hint names the key. */
export function signEnvelope(payloadType: string, payload: Buffer, privateKey: KeyObject): Envelope {
  const sig = sign('sha256', pae(payloadType, payload), { key: privateKey, dsaEncoding: 'der' });
  return { payload, payloadType, signatures: [{ sig, keyid: '' }] };
}

/** True when any signature of the envelope verifies with `publicKey`. */
export function verifyEnvelope(env: Envelope, publicKey: KeyObject): boolean {
  const data = pae(env.payloadType, env.payload);
  return env.signatures.some((s) => {
    try {
      return verify('sha256', data, { key: publicKey, dsaEncoding: 'der' }, s.sig);
    } catch {
      return false; // a malformed DER signature is simply not a valid one
    }
  });
}
