import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasErrorCode, PackError } from '../errors.js';
import type { Index } from '../oci/manifest.js';
import { hostPlatform, selectManifest } from './select.js';

const d = (n: number, extra: object = {}) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${String(n).repeat(64).slice(0, 64)}`, size: 100 + n, ...extra });

test('chooses a manifest of an index by variant annotation, KEY=VALUE or platform', () => {
  const index: Index = {
    schemaVersion: 2,
    manifests: [d(1, { annotations: { 'org.cncf.model.quantization': 'Q4_K_M' } }), d(2, { annotations: { 'org.cncf.model.quantization': 'Q8_0' } })],
  };
  assert.equal(selectManifest(index, { variant: 'q8_0' }, 'x').size, 102);
  assert.equal(selectManifest(index, { variant: 'org.cncf.model.quantization=Q4_K_M' }, 'x').size, 101);
  assert.throws(() => selectManifest(index, {}, 'x'), (e) => hasErrorCode(e, 'USAGE') && /Q4_K_M/.test((e as PackError).hint ?? ''));
  assert.throws(() => selectManifest(index, { variant: 'F16' }, 'x'), (e) => hasErrorCode(e, 'NOT_FOUND'));
  const images: Index = {
    schemaVersion: 2,
    manifests: [d(3, { platform: { os: 'linux', architecture: 'arm64' } }), d(4, { platform: { os: 'windows', architecture: 'amd64' } }), d(5, { platform: { os: hostPlatform().split('/')[0], architecture: hostPlatform().split('/')[1] } })],
  };
  assert.equal(selectManifest(images, { platform: 'linux/arm64' }, 'x').size, 103);
  assert.equal(selectManifest(images, {}, 'x').size, 105, 'the host platform when nothing is said');
  assert.equal(selectManifest({ schemaVersion: 2, manifests: [d(6)] }, {}, 'x').size, 106, 'the only one');
});
