/**
 * `mpk sign` on the local store: keys (generated, or made by openssl; wrong curve and overwrite
 * refused), the bundle's shape (Sigstore bundle v0.3, DSSE, in-toto statement of the manifest
 * digest and every file), and the bundle verified by an independent verifier: Sigstore JS with
 * the public key as its only trust material.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BUNDLE_TYPE, jsonError, opensslKey, signFixture, sigstoreVerify, storedBundle } from '../test-support/signing.js';
import { PREDICATE_TYPE, STATEMENT_TYPE } from './statement.js';

test('sign --generate-key: a 0600 key and its .pub; the bundle is a v0.3 DSSE in-toto statement of the manifest and its files; Sigstore JS verifies it', async (t) => {
  const f = await signFixture(t);
  if (!f) return;
  const digest = await f.build('local/m:1', 'a');
  const out = JSON.parse(await f.ok('sign', 'local/m:1', '--key', 'k.pem', '--generate-key', '--json'));
  assert.equal(out.subject, digest);
  assert.equal(out.artifactType, BUNDLE_TYPE);
  assert.equal(out.files, 6);
  assert.equal(out.publicKey, join(f.dir, 'k.pub'));
  assert.equal((await stat(join(f.dir, 'k.pem'))).mode & 0o777, 0o600);
  assert.match(await readFile(join(f.dir, 'k.pub'), 'utf8'), /^-----BEGIN PUBLIC KEY-----/);

  const bytes = await storedBundle(f, 'local/m:1', out.digest);
  const bundle = JSON.parse(bytes.toString());
  assert.equal(bundle.mediaType, BUNDLE_TYPE);
  assert.equal(bundle.verificationMaterial.publicKey.hint, out.keyId);
  assert.equal(bundle.dsseEnvelope.payloadType, 'application/vnd.in-toto+json');
  const st = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString());
  assert.equal(st._type, STATEMENT_TYPE);
  assert.equal(st.predicateType, PREDICATE_TYPE);
  assert.deepEqual(st.subject, [{ name: 'local/m', digest: { sha256: digest.slice(7) } }]);
  const manifest = JSON.parse(await readFile(join(f.store, 'blobs', 'sha256', digest.slice(7)), 'utf8'));
  assert.deepEqual(
    st.predicate.files.map((x: { digest: string; size: number; mediaType: string }) => [x.digest, x.size, x.mediaType]),
    manifest.layers.map((l: { digest: string; size: number; mediaType: string }) => [l.digest, l.size, l.mediaType]),
  );
  assert.deepEqual(st.predicate.files.map((x: { path: string }) => x.path).sort(), ['README.md', 'config.json', 'data/train.jsonl', 'model.safetensors', 'modeling.py', 'tokenizer.json']);

  // The independent verifier accepts it with the key, and refuses it with another key or once altered.
  await sigstoreVerify(bytes, join(f.dir, 'k.pub'));
  const other = opensslKey(f.dir, 'other');
  const hinted = JSON.stringify({ ...bundle, verificationMaterial: { ...bundle.verificationMaterial } });
  await assert.rejects(sigstoreVerify(Buffer.from(hinted), other.pub), /key not found|PUBLIC_KEY/);
  const forged = structuredClone(bundle);
  forged.dsseEnvelope.payload = Buffer.from(JSON.stringify({ ...st, subject: [{ name: 'x', digest: { sha256: '0'.repeat(64) } }] })).toString('base64');
  await assert.rejects(sigstoreVerify(Buffer.from(JSON.stringify(forged)), join(f.dir, 'k.pub')), /signature verification failed|SIGNATURE/);

  // --generate-key never replaces a key
  const again = await f.run('sign', 'local/m:1', '--key', 'k.pem', '--generate-key', '--json');
  assert.equal(again.code, 7, again.stderr);
  assert.equal(jsonError(again).code, 'ALREADY_EXISTS');
});

test('sign with an openssl key (SEC1 PEM); several signatures per model; verify names the one by the given key', async (t) => {
  const f = await signFixture(t);
  if (!f) return;
  await f.build('local/m:1', 'a');
  const a = opensslKey(f.dir, 'a');
  const b = opensslKey(f.dir, 'b');
  const sa = (await f.ok('sign', 'local/m:1', '--key', a.priv)).trim();
  const sb = (await f.ok('sign', 'local/m:1', '--key', b.priv)).trim();
  assert.notEqual(sa, sb);
  const va = JSON.parse(await f.ok('verify-signature', 'local/m:1', '--key', a.pub, '--json'));
  const vb = JSON.parse(await f.ok('verify-signature', 'local/m:1', '--key', b.pub, '--json'));
  assert.equal(va.signature, sa);
  assert.equal(vb.signature, sb);
  assert.equal(vb.found, 2);
  const text = await f.ok('verify-signature', 'local/m:1', '--key', a.pub);
  assert.match(text, new RegExp(`^Verified local/m:1@sha256:[0-9a-f]{64}: signature ${sa} \\(in the store\\) by key [0-9a-f]{16}… covers the manifest and 6 files \\(2 signatures found\\)\\n$`));
  await sigstoreVerify(await storedBundle(f, 'local/m:1', sb), b.pub);
});

test('sign refuses keys that are not P-256 private keys, and needs --key', async (t) => {
  const f = await signFixture(t);
  if (!f) return;
  await f.build('local/m:1', 'a');
  const p384 = opensslKey(f.dir, 'p384', 'secp384r1');
  const curve = await f.run('sign', 'local/m:1', '--key', p384.priv, '--json');
  assert.equal(curve.code, 2);
  assert.match(jsonError(curve).message, /secp384r1; mpk signs with ECDSA P-256/);
  const pub = await f.run('sign', 'local/m:1', '--key', opensslKey(f.dir, 'k').pub, '--json');
  assert.equal(pub.code, 2);
  assert.match(jsonError(pub).message, /not a PEM private key/);
  await writeFile(join(f.dir, 'enc.pem'), '-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n');
  const enc = await f.run('sign', 'local/m:1', '--key', 'enc.pem', '--json');
  assert.match(jsonError(enc).message, /an encrypted private key/);
  const none = await f.run('sign', 'local/m:1');
  assert.equal(none.code, 2);
  assert.match(none.stderr, /--key is required/);
  const tree = JSON.parse(await f.ok('referrers', 'local/m:1', '--json'));
  assert.deepEqual(tree.referrers, [], 'no signature written by a refused sign');
});
