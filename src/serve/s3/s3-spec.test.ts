/**
 * The spec test suite of `mpk serve` (blobs, uploads, manifests, listings) run again with the
 * registry on S3 object storage: a real Ceph RADOS Gateway started for this file, a new bucket per
 * server. Tests that look at the filesystem root skip themselves here (fsOnly).
 */
import { after, test } from 'node:test';
import { startRgw } from '../../test-support/rgw.js';
import { serveOnS3 } from '../../test-support/serve.js';

const rgw = await startRgw();
if (typeof rgw === 'string') {
  test('the mpk serve spec suite on S3 (RGW)', (t) => void t.skip(rgw));
} else {
  after(() => rgw.stop());
  serveOnS3(rgw);
  await import('../blob-routes.test.js');
  await import('../upload-routes.test.js');
  await import('../manifest-routes.test.js');
  await import('../listing-routes.test.js');
}
