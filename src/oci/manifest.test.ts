import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseManifest, childDescriptors } from './manifest.js';
import { canonicalJsonBytes } from './canonical-json.js';
import { digestBytes } from './digest.js';
import { OCI_INDEX, OCI_MANIFEST } from './media-types.js';
import { hasErrorCode } from '../errors.js';
import { assertValid, validators } from '../test-support/schemas.js';

const blob = (s: string, mediaType = 'application/octet-stream') => ({ mediaType, digest: digestBytes(s), size: s.length });

test('parseManifest reads a manifest and lists its children; the OCI schema agrees', () => {
  const m = { schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: 'application/x.test', config: blob('{}', 'application/vnd.oci.empty.v1+json'), layers: [blob('a'), blob('b')] };
  const p = parseManifest(canonicalJsonBytes(m));
  assert.equal(p.kind, 'manifest');
  assert.deepEqual(childDescriptors(p).map((d) => d.digest), [m.config.digest, m.layers[0]!.digest, m.layers[1]!.digest]);
  assertValid(validators().manifest, m, 'manifest');
});

test('parseManifest reads an index; the OCI schema agrees', () => {
  const idx = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ ...blob('m', OCI_MANIFEST), platform: { architecture: 'amd64', os: 'linux' } }] };
  const p = parseManifest(canonicalJsonBytes(idx));
  assert.equal(p.kind, 'index');
  assertValid(validators().index, idx, 'index');
});

test('parseManifest refuses malformed documents', () => {
  const good = { schemaVersion: 2, mediaType: OCI_MANIFEST, config: blob('{}'), layers: [] as unknown[] };
  const bad: [unknown, string][] = [
    [{ ...good, schemaVersion: 1 }, 'INVALID_MANIFEST'],
    [{ ...good, config: { ...good.config, digest: 'sha256:xyz' } }, 'INVALID_MANIFEST'],
    [{ ...good, layers: [{ mediaType: 'bad type', digest: good.config.digest, size: 1 }] }, 'INVALID_MANIFEST'],
    [{ ...good, layers: [{ ...good.config, size: -1 }] }, 'INVALID_MANIFEST'],
    [{ ...good, annotations: { a: 1 } }, 'INVALID_MANIFEST'],
    [{ ...good, mediaType: 'application/x.other' }, 'INVALID_MEDIA_TYPE'],
    ['not an object', 'INVALID_MANIFEST'],
  ];
  for (const [doc, code] of bad) {
    assert.throws(() => parseManifest(Buffer.from(JSON.stringify(doc))), (e: unknown) => hasErrorCode(e, code as 'INVALID_MANIFEST'), JSON.stringify(doc));
  }
  assert.throws(() => parseManifest(Buffer.from('{')), (e: unknown) => hasErrorCode(e, 'INVALID_MANIFEST'));
  assert.throws(() => parseManifest(Buffer.alloc(4 * 1024 * 1024 + 1, 32)), (e: unknown) => hasErrorCode(e, 'SIZE_EXCEEDS_LIMIT'));
  assert.throws(() => parseManifest(canonicalJsonBytes(good), OCI_INDEX), (e: unknown) => hasErrorCode(e, 'INVALID_MANIFEST'));
});

test('parseManifest answers the same bytes object with the same parse; other bytes, or another media type, are parsed anew', () => {
  const m = { schemaVersion: 2, mediaType: OCI_MANIFEST, config: blob('{}'), layers: [blob('a')] };
  const bytes = canonicalJsonBytes(m);
  const first = parseManifest(bytes, OCI_MANIFEST, 'm');
  assert.equal(parseManifest(bytes, OCI_MANIFEST, 'm'), first, 'the same object');
  const copy = Buffer.from(bytes);
  assert.notEqual(parseManifest(copy, OCI_MANIFEST, 'm'), first);
  assert.deepEqual(parseManifest(copy, OCI_MANIFEST, 'm'), first);
  // Given another media type, the same bytes are checked against it, not answered from before.
  assert.throws(() => parseManifest(bytes, OCI_INDEX, 'm'), (e) => hasErrorCode(e, 'INVALID_MANIFEST'));
  assert.equal(parseManifest(bytes, OCI_MANIFEST, 'm'), first);
});
