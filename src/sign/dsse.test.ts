/** DSSE: the pre-authentication encoding of the spec, and signatures that fail when anything changes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { pae, signEnvelope, verifyEnvelope } from './dsse.js';

test('PAE is the spec example byte for byte', () => {
  assert.equal(pae('http://example.com/HelloWorld', Buffer.from('hello world')).toString(), 'DSSEv1 29 http://example.com/HelloWorld 11 hello world');
  // lengths count bytes, not characters
  assert.equal(pae('t', Buffer.from('é')).toString(), 'DSSEv1 1 t 2 é');
});

test('an envelope verifies with its key only, and not once its payload or type changes', () => {
  const a = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const b = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const env = signEnvelope('application/vnd.in-toto+json', Buffer.from('{"x":1}'), a.privateKey);
  assert.equal(verifyEnvelope(env, a.publicKey), true);
  assert.equal(verifyEnvelope(env, b.publicKey), false);
  assert.equal(verifyEnvelope({ ...env, payload: Buffer.from('{"x":2}') }, a.publicKey), false);
  assert.equal(verifyEnvelope({ ...env, payloadType: 'text/plain' }, a.publicKey), false);
  assert.equal(verifyEnvelope({ ...env, signatures: [{ sig: Buffer.from('not der'), keyid: '' }] }, a.publicKey), false);
});
