/** The bundle JSON: written and read back; every malformed shape is BUNDLE_INVALID, naming the artifact. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PackError } from '../errors.js';
import { BUNDLE_MEDIA_TYPE, bundleBytes, parseBundle } from './bundle.js';

test('a bundle reads back; malformed ones are BUNDLE_INVALID', () => {
  const env = { payload: Buffer.from('{"a":1}'), payloadType: 'application/vnd.in-toto+json', signatures: [{ sig: Buffer.from([1, 2, 3]), keyid: '' }] };
  const bytes = bundleBytes({ keyHint: 'ab'.repeat(32), envelope: env });
  const doc = JSON.parse(bytes.toString());
  assert.equal(doc.mediaType, BUNDLE_MEDIA_TYPE);
  assert.deepEqual(doc.verificationMaterial.tlogEntries, []);
  const back = parseBundle(bytes, 'sig');
  assert.equal(back.keyHint, 'ab'.repeat(32));
  assert.deepEqual(back.envelope, env);

  const variants: [string, unknown][] = [
    ['cut short', bytes.subarray(0, 50).toString()],
    ['media type', { ...doc, mediaType: 'application/vnd.dev.sigstore.bundle+json;version=0.2' }],
    ['no publicKey', { ...doc, verificationMaterial: { tlogEntries: [] } }],
    ['no envelope', { ...doc, dsseEnvelope: undefined }],
    ['no signatures', { ...doc, dsseEnvelope: { ...doc.dsseEnvelope, signatures: [] } }],
    ['payload not base64', { ...doc, dsseEnvelope: { ...doc.dsseEnvelope, payload: 'not base64!' } }],
  ];
  for (const [why, v] of variants) {
    const b = Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));
    assert.throws(() => parseBundle(b, 'signature sha256:x'), (e) => e instanceof PackError && e.code === 'BUNDLE_INVALID' && e.message.startsWith('signature sha256:x: not a valid Sigstore bundle'), why);
  }
});
