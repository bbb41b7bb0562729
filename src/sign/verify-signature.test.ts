/**
 * `mpk verify-signature` against tampering, on the local store: each attack refused with its own
 * error code (exit 4), an unsigned model with SIGNATURE_MISSING (exit 12). The attacker's tools
 * are mpk's own: attach (to copy or forge a signature artifact), build, and the blob files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { attachBundle, jsonError, opensslKey, signFixture, storedBundle } from '../test-support/signing.js';

test('tampering: wrong key, truncated bundle, copied onto another model, changed manifest, changed file, altered statement, altered blob, unsigned', async (t) => {
  const f = await signFixture(t);
  if (!f) return;
  const key = opensslKey(f.dir, 'k');
  const digest = await f.build('local/m:1', 'a');
  const sig = (await f.ok('sign', 'local/m:1', '--key', key.priv)).trim();
  const bundle = await storedBundle(f, 'local/m:1', sig);
  const ok = JSON.parse(await f.ok('verify-signature', 'local/m:1', '--key', key.pub, '--json'));
  assert.equal(ok.digest, digest);

  const refused = async (ref: string, pub: string, code: string, exit: number, message: RegExp) => {
    const r = await f.run('verify-signature', ref, '--key', pub, '--json');
    assert.equal(r.code, exit, `${ref}: ${r.stderr}`);
    const e = jsonError(r);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    assert.ok(e.hint, 'a hint says what to do');
    const plain = await f.run('verify-signature', ref, '--key', pub);
    assert.equal(plain.code, exit);
    assert.match(plain.stderr, /^mpk: .+\. Hint: .+\n$/);
  };

  // the wrong key
  const other = opensslKey(f.dir, 'other');
  await refused('local/m:1', other.pub, 'SIGNATURE_WRONG_KEY', 4, /^local\/m@sha256:[0-9a-f]{12}…: signed by key [0-9a-f]{12}…, not by the given key [0-9a-f]{12}…$/);

  // a truncated bundle (the only signature of another model)
  await f.build('local/t:1', 't');
  await attachBundle(f, 'local/t:1', bundle.subarray(0, bundle.length - 40), 'truncated.json');
  await refused('local/t:1', key.pub, 'BUNDLE_INVALID', 4, /not a valid Sigstore bundle: the JSON is cut short or malformed/);

  // a valid signature copied onto another model
  await f.build('local/other:1', 'o');
  await attachBundle(f, 'local/other:1', bundle, 'copied.json');
  await refused('local/other:1', key.pub, 'SIGNATURE_OTHER_MODEL', 4, /is for another model \(local\/m@sha256:/);

  // the manifest changed (a new config: same files), the signature copied along
  await f.build('local/m:2', 'a', {}, '--created', '2020-01-01T00:00:00Z');
  await attachBundle(f, 'local/m:2', bundle, 'moved.json');
  await refused('local/m:2', key.pub, 'SIGNATURE_MANIFEST_CHANGED', 4, /the manifest differs from the one signed \(sha256:[0-9a-f]{12}…\), though the files are the same/);

  // a file changed (README.md), the signature copied along
  await f.build('local/m:3', 'a', { 'README.md': '# model a, improved\n' });
  await attachBundle(f, 'local/m:3', bundle, 'changed.json');
  await refused('local/m:3', key.pub, 'SIGNATURE_FILE_CHANGED', 4, /files differ from the signed ones: README\.md \(sha256:[0-9a-f]{12}…, signed sha256:[0-9a-f]{12}…\)$/);

  // the statement altered to name the changed model, the old signature kept
  const m4 = await f.build('local/m:4', 'a', { 'README.md': '# model a, altered\n' });
  const doc = JSON.parse(bundle.toString());
  const st = JSON.parse(Buffer.from(doc.dsseEnvelope.payload, 'base64').toString());
  st.subject[0].digest.sha256 = m4.slice(7);
  doc.dsseEnvelope.payload = Buffer.from(JSON.stringify(st)).toString('base64');
  await attachBundle(f, 'local/m:4', Buffer.from(JSON.stringify(doc)), 'altered.json');
  await refused('local/m:4', key.pub, 'SIGNATURE_INVALID', 4, /does not verify with key [0-9a-f]{12}/);

  // unsigned; and mpk run refuses it before loading anything
  await f.build('local/u:1', 'u');
  await refused('local/u:1', key.pub, 'SIGNATURE_MISSING', 12, /^local\/u@sha256:[0-9a-f]{12}…: not signed \(no signature in the store\)$/);
  const run = await f.run('run', 'local/u:1', 'hello', '--require-signature', key.pub);
  assert.equal(run.code, 12, run.stderr);
  assert.match(run.stderr, /not signed/);

  // a stored file's bytes altered in place (the manifest still matches the signature)
  const readme = JSON.parse(await f.ok('inspect', 'local/m:1', '--json')).files.find((x: { path: string }) => x.path === 'README.md');
  const blob = join(f.store, 'blobs', 'sha256', readme.digest.slice(7));
  await chmod(blob, 0o644);
  await writeFile(blob, '# model A\n');
  await refused('local/m:1', key.pub, 'SIGNATURE_FILE_CHANGED', 4, /README\.md: the stored bytes are no longer sha256:[0-9a-f]{64}, the signed file$/);
});
