/**
 * The signed statement: in-toto Statement v1 whose one subject is the model's manifest (by
 * digest, as resolved when signing) and whose predicate lists every file of the model with its
 * digest, size and media type, so the signature speaks for the files, not only for the manifest
 * (the OpenSSF model-signing idea; its own predicate hashes a directory, so mpk has its own type).
 * `compareStatement` says how a statement and a model disagree, one error code per way.
 * Reference: https://github.com/in-toto/attestation/blob/v1.0/spec/v1/statement.md
 */
import { PackError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { canonicalJsonBytes } from '../oci/canonical-json.js';
import { parseDigest } from '../oci/digest.js';
import type { ModelFile } from '../modelpack/model-view.js';

export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
export const PREDICATE_TYPE = 'https://mpk.dev/model-files/v1';
const MAX_FILES = 100_000;

export interface SignedFile {
  path: string;
  digest: string;
  size: number;
  mediaType: string;
}

export interface ModelStatement {
  /** The repository the model was signed under (informative: a copy elsewhere stays signed). */
  name: string;
  /** `sha256:<hex>` of the manifest. */
  manifest: string;
  manifestMediaType: string;
  files: SignedFile[];
}

/** The statement's bytes (canonical JSON: the same model signs to the same payload). */
export function statementBytes(name: string, manifest: Descriptor, files: ModelFile[]): Buffer {
  const { algorithm, hex } = parseDigest(manifest.digest);
  return canonicalJsonBytes({
    _type: STATEMENT_TYPE,
    subject: [{ name, digest: { [algorithm]: hex } }],
    predicateType: PREDICATE_TYPE,
    predicate: {
      manifest: { mediaType: manifest.mediaType, size: manifest.size },
      files: files.map((f) => ({ path: f.path, digest: f.layer.digest, size: f.layer.size, mediaType: f.layer.mediaType })),
    },
  });
}

function bad(where: string, why: string): PackError {
  return new PackError('BUNDLE_INVALID', `${where}: the signed statement is not an mpk model statement: ${why}`, {
    hint: `verify-signature checks statements of type ${PREDICATE_TYPE}; sign the model with mpk sign`,
  });
}

/** Reads a verified payload as a model statement (checked field by field). */
export function parseStatement(payload: Buffer, where: string): ModelStatement {
  let doc: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  try {
    doc = JSON.parse(payload.toString('utf8'));
  } catch {
    throw bad(where, 'not JSON');
  }
  if (!doc || typeof doc !== 'object') throw bad(where, 'not an object');
  if (doc._type !== STATEMENT_TYPE) throw bad(where, `_type ${JSON.stringify(doc._type)}`);
  if (doc.predicateType !== PREDICATE_TYPE) throw bad(where, `predicateType ${JSON.stringify(doc.predicateType)}`);
  const subject = Array.isArray(doc.subject) && doc.subject.length === 1 ? doc.subject[0] : undefined;
  const hex = subject?.digest?.sha256;
  if (typeof subject?.name !== 'string' || typeof hex !== 'string' || !/^[0-9a-f]{64}$/.test(hex)) throw bad(where, 'it needs one subject with a name and a sha256 digest');
  const p = doc.predicate;
  if (!p || !Array.isArray(p.files) || p.files.length > MAX_FILES || typeof p.manifest?.mediaType !== 'string') throw bad(where, 'the predicate has no manifest or file list');
  const files = (p.files as unknown[]).map((f, i): SignedFile => {
    const o = f as Record<string, unknown>;
    const ok = o && typeof o.path === 'string' && typeof o.digest === 'string' && Number.isSafeInteger(o.size) && typeof o.mediaType === 'string';
    if (!ok) throw bad(where, `file ${i} lacks path, digest, size or mediaType`);
    return { path: o.path as string, digest: o.digest as string, size: o.size as number, mediaType: o.mediaType as string };
  });
  return { name: subject.name, manifest: `sha256:${hex}`, manifestMediaType: p.manifest.mediaType, files };
}

const short = (d: string) => d.slice(0, 19);

/**
 * Checks a verified statement against the model `manifest` (digest) with `files`, known as
 * `name`. Throws, most specific first: the same files under another manifest (the manifest was
 * changed), files that differ (a file was changed), a statement for another model.
 */
export function compareStatement(st: ModelStatement, manifest: string, name: string, files: ModelFile[], where: string): void {
  const signed = new Map(st.files.map((f) => [f.path, f]));
  const changed: string[] = [];
  for (const f of files) {
    const s = signed.get(f.path);
    if (!s) changed.push(`${f.path} (not signed)`);
    else if (s.digest !== f.layer.digest || s.size !== f.layer.size || s.mediaType !== f.layer.mediaType) changed.push(`${f.path} (${short(f.layer.digest)}…, signed ${short(s.digest)}…)`);
    signed.delete(f.path);
  }
  changed.push(...[...signed.keys()].map((p) => `${p} (signed, now missing)`));
  if (st.manifest === manifest && changed.length === 0) return;
  if (st.manifest !== manifest && changed.length === 0) {
    throw new PackError('SIGNATURE_MANIFEST_CHANGED', `${name}@${short(manifest)}…: the manifest differs from the one signed (${short(st.manifest)}…), though the files are the same`, {
      hint: `the manifest was changed after signing (${where}); sign the new manifest if the change is yours`,
    });
  }
  if (st.name === name || st.manifest === manifest) {
    const list = changed.length > 3 ? `${changed.slice(0, 3).join(', ')} and ${changed.length - 3} more` : changed.join(', ');
    throw new PackError('SIGNATURE_FILE_CHANGED', `${name}@${short(manifest)}…: files differ from the signed ones: ${list}`, {
      hint: `the model's files were changed after signing (${where}); do not use it, or sign it again if the change is yours`,
    });
  }
  throw new PackError('SIGNATURE_OTHER_MODEL', `${name}@${short(manifest)}…: the signature ${where} is for another model (${st.name}@${short(st.manifest)}…)`, {
    hint: 'a signature was copied from another model; this model is not signed by the key',
  });
}
