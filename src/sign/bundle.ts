/**
 * The Sigstore bundle v0.3 (JSON) as mpk writes and reads it: key-based verification material
 * (`publicKey.hint`, no certificate, no transparency-log entries) around a DSSE envelope.
 * Everything read is checked for shape and bounded before use; a malformed or truncated bundle is
 * BUNDLE_INVALID, naming the referrer it came from.
 * Reference: https://github.com/sigstore/protobuf-specs/blob/main/protos/sigstore_bundle.proto
 */
import { PackError } from '../errors.js';
import type { Envelope } from './dsse.js';

export const BUNDLE_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
/** A bundle over a statement that lists a model's files: generous, but bounded. */
export const MAX_BUNDLE_BYTES = 4 * 1024 * 1024;
const MAX_SIGNATURES = 16;

export interface KeyBundle {
  keyHint: string;
  envelope: Envelope;
}

/** The bundle's JSON bytes (fields in protobuf-JSON camelCase; bytes as standard base64). */
export function bundleBytes(b: KeyBundle): Buffer {
  const doc = {
    mediaType: BUNDLE_MEDIA_TYPE,
    verificationMaterial: {
      publicKey: { hint: b.keyHint },
      tlogEntries: [],
      timestampVerificationData: { rfc3161Timestamps: [] },
    },
    dsseEnvelope: {
      payload: b.envelope.payload.toString('base64'),
      payloadType: b.envelope.payloadType,
      signatures: b.envelope.signatures.map((s) => ({ sig: s.sig.toString('base64'), keyid: s.keyid })),
    },
  };
  return Buffer.from(`${JSON.stringify(doc)}\n`);
}

const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

function base64(v: unknown, field: string, where: string): Buffer {
  // protobuf JSON allows URL-safe base64 too
  const s = typeof v === 'string' ? v.replace(/-/g, '+').replace(/_/g, '/') : undefined;
  if (s === undefined || !B64.test(s)) throw invalid(where, `${field} is not base64`);
  return Buffer.from(s, 'base64');
}

function invalid(where: string, why: string): PackError {
  return new PackError('BUNDLE_INVALID', `${where}: not a valid Sigstore bundle: ${why}`, {
    hint: 'the signature artifact is damaged or truncated; sign the model again (mpk sign)',
  });
}

function obj(v: unknown): Record<string, unknown> | undefined {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/** Parses and checks a bundle; `where` names it in errors (the referrer's digest). */
export function parseBundle(bytes: Buffer, where: string): KeyBundle {
  if (bytes.length > MAX_BUNDLE_BYTES) throw invalid(where, `${bytes.length} bytes is over the ${MAX_BUNDLE_BYTES}-byte limit`);
  let doc: Record<string, unknown> | undefined;
  try {
    doc = obj(JSON.parse(bytes.toString('utf8')));
  } catch {
    throw invalid(where, 'the JSON is cut short or malformed');
  }
  if (!doc) throw invalid(where, 'not a JSON object');
  if (doc.mediaType !== BUNDLE_MEDIA_TYPE) throw invalid(where, `media type ${JSON.stringify(doc.mediaType)}, expected ${BUNDLE_MEDIA_TYPE}`);
  const vm = obj(doc.verificationMaterial);
  const pk = obj(vm?.publicKey);
  if (!pk) throw invalid(where, 'no verificationMaterial.publicKey (mpk verifies key-signed bundles)');
  const hint = pk.hint ?? '';
  if (typeof hint !== 'string' || hint.length > 256) throw invalid(where, 'publicKey.hint is not a short string');
  const env = obj(doc.dsseEnvelope);
  if (!env) throw invalid(where, 'no dsseEnvelope');
  if (typeof env.payloadType !== 'string' || env.payloadType.length > 256) throw invalid(where, 'dsseEnvelope.payloadType is missing');
  const sigs = env.signatures;
  if (!Array.isArray(sigs) || sigs.length === 0 || sigs.length > MAX_SIGNATURES) throw invalid(where, `dsseEnvelope.signatures must hold 1 to ${MAX_SIGNATURES} signatures`);
  return {
    keyHint: hint,
    envelope: {
      payload: base64(env.payload, 'dsseEnvelope.payload', where),
      payloadType: env.payloadType,
      signatures: sigs.map((s, i) => {
        const o = obj(s);
        if (!o) throw invalid(where, `dsseEnvelope.signatures[${i}] is not an object`);
        const keyid = o.keyid ?? '';
        return { sig: base64(o.sig, `dsseEnvelope.signatures[${i}].sig`, where), keyid: typeof keyid === 'string' ? keyid : '' };
      }),
    },
  };
}
