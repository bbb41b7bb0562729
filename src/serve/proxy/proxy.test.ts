/**
 * `mpk serve --proxy`: a pull-through cache in front of a real docker-registry, whose requests are
 * counted by a forwarding proxy between the two. Eight clients pulling the same 256 MiB model at
 * once cause one upstream GET of each blob; a tag is revalidated with a HEAD after the TTL; the
 * upstream stopped, cached content is still served and the rest fails with a clear 503; pushes are
 * refused. Once on the filesystem, once (small) on S3.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { startFaultProxy, type FaultProxy } from '../../test-support/fault-proxy.js';
import { requirePeer } from '../../test-support/peers.js';
import { startDockerRegistry } from '../../test-support/registry-peer.js';
import { startRgw, type Rgw } from '../../test-support/rgw.js';
import { OCI_MANIFEST, request, s3Options, sha256, specError, startTestServer, type T } from '../../test-support/serve.js';

const MiB = 1024 * 1024;

async function upstreamWithCounter(t: T & { skip?: unknown }): Promise<{ proxy: FaultProxy; stopRegistry(): Promise<void> }> {
  const reg = await startDockerRegistry(null);
  t.after(() => reg.stop());
  const proxy = await startFaultProxy(null, reg.url);
  t.after(() => proxy.stop());
  return { proxy, stopRegistry: () => reg.stop() };
}

/** POST then PUT (docker-registry 2.8 takes no monolithic POST). */
async function putBlob(base: string, name: string, bytes: Buffer): Promise<string> {
  const digest = sha256(bytes);
  const post = await request(`${base}/v2/${name}/blobs/uploads/`, { method: 'POST', headers: { 'content-length': 0 } });
  assert.equal(post.status, 202, post.text);
  const loc = new URL(String(post.headers.location), base);
  loc.searchParams.set('digest', digest);
  const put = await request(loc.toString(), { method: 'PUT', body: bytes, headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(put.status, 201, put.text);
  return digest;
}

/** Pushes an image (config + one layer) straight to the upstream. */
async function pushUpstream(base: string, name: string, tag: string, layer: Buffer, seed: string): Promise<{ manifest: Buffer; digest: string; layer: string; config: string }> {
  const config = Buffer.from(JSON.stringify({ seed }));
  const cd = await putBlob(base, name, config);
  const ld = await putBlob(base, name, layer);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cd, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: ld, size: layer.length }],
    }),
  );
  const r = await request(`${base}/v2/${name}/manifests/${tag}`, { method: 'PUT', body: manifest, headers: { 'content-type': OCI_MANIFEST } });
  assert.equal(r.status, 201, r.text);
  return { manifest, digest: sha256(manifest), layer: ld, config: cd };
}

/** GETs a blob and returns its sha256 and length, never holding it whole. */
function hashGet(url: string): Promise<{ status: number; digest: string; length: number }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        const h = createHash('sha256');
        let length = 0;
        res.on('data', (c: Buffer) => {
          h.update(c);
          length += c.length;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, digest: `sha256:${h.digest('hex')}`, length }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

const blobGets = (p: FaultProxy, digest: string): number => p.log.filter((e) => e.method === 'GET' && e.url.endsWith(`/blobs/${digest}`)).length;

test('8 clients pulling the same 256 MiB model at once through the cache: one upstream GET of each blob, every client gets it whole', async (t) => {
  if (!requirePeer(t, 'docker-registry')) return;
  const { proxy } = await upstreamWithCounter(t);
  const img = await pushUpstream(proxy.url, 'big/model', 'v1', randomBytes(256 * MiB), 'big');
  proxy.log.length = 0;
  const cache = await startTestServer(t, { proxy: proxy.url });
  const pulls = Array.from({ length: 8 }, async () => {
    const m = await request(`${cache.url}/v2/big/model/manifests/v1`, { headers: { accept: OCI_MANIFEST } });
    assert.equal(m.status, 200);
    assert.deepEqual(m.body, img.manifest);
    const doc = m.json<{ config: { digest: string }; layers: Array<{ digest: string; size: number }> }>();
    for (const d of [doc.config.digest, doc.layers[0]!.digest]) {
      const got = await hashGet(`${cache.url}/v2/big/model/blobs/${d}`);
      assert.equal(got.status, 200);
      assert.equal(got.digest, d);
    }
  });
  await Promise.all(pulls);
  assert.equal(blobGets(proxy, img.layer), 1, 'one upstream fetch of the 256 MiB layer');
  assert.equal(blobGets(proxy, img.config), 1, 'one upstream fetch of the config');
  assert.equal(proxy.log.filter((e) => e.url.includes('/manifests/')).length <= 2, true, `one HEAD and one GET of the manifest: ${JSON.stringify(proxy.log.map((e) => `${e.method} ${e.url}`))}`);
  // Upstream bytes = 1.0x the model.
  const upstreamBytes = proxy.log.filter((e) => e.url.includes('/blobs/')).reduce((a, e) => a + e.bodyBytesSent, 0);
  assert.equal(upstreamBytes, 256 * MiB + Buffer.byteLength(JSON.stringify({ seed: 'big' })));
});

test('a tag is revalidated with a HEAD after the TTL (a moved tag is followed); by digest it is served from the cache; pushes are refused', async (t) => {
  if (!requirePeer(t, 'docker-registry')) return;
  const { proxy } = await upstreamWithCounter(t);
  const one = await pushUpstream(proxy.url, 'm', 'latest', Buffer.from('one'), 'one');
  const cache = await startTestServer(t, { proxy: proxy.url, proxyTtlMs: 300 });
  assert.equal((await request(`${cache.url}/v2/m/manifests/latest`)).headers['docker-content-digest'], one.digest);
  const two = await pushUpstream(proxy.url, 'm', 'latest', Buffer.from('two'), 'two');
  proxy.log.length = 0;
  assert.equal((await request(`${cache.url}/v2/m/manifests/latest`)).headers['docker-content-digest'], one.digest, 'within the TTL: the cached tag');
  assert.equal(proxy.log.length, 0, 'not asked within the TTL');
  await new Promise((r) => setTimeout(r, 350));
  assert.equal((await request(`${cache.url}/v2/m/manifests/latest`)).headers['docker-content-digest'], two.digest, 'after the TTL: revalidated, moved');
  assert.ok(proxy.log.some((e) => e.method === 'HEAD' && e.url.endsWith('/manifests/latest')));
  proxy.log.length = 0;
  assert.equal((await request(`${cache.url}/v2/m/manifests/${one.digest}`)).status, 200);
  assert.equal(proxy.log.length, 0, 'by digest: from the cache');
  const push = await request(`${cache.url}/v2/m/blobs/uploads/`, { method: 'POST', headers: { 'content-length': 0 } });
  assert.equal(push.status, 405);
  assert.match(specError(push).message, /pull-through cache of http:\/\/127\.0\.0\.1:\d+: push there/);
  assert.equal((await request(`${cache.url}/v2/m/manifests/latest`, { method: 'PUT', body: one.manifest, headers: { 'content-type': OCI_MANIFEST } })).status, 405);
});

test('upstream stopped: what was pulled through the cache is still served (even past the TTL); the rest fails with a 503 naming the upstream', async (t) => {
  if (!requirePeer(t, 'docker-registry')) return;
  const { proxy } = await upstreamWithCounter(t);
  const a = await pushUpstream(proxy.url, 'keep', 'v1', randomBytes(3 * MiB), 'a');
  await pushUpstream(proxy.url, 'never', 'v1', Buffer.from('never pulled'), 'n');
  const cache = await startTestServer(t, { proxy: proxy.url, proxyTtlMs: 1 });
  assert.equal((await request(`${cache.url}/v2/keep/manifests/v1`)).status, 200);
  assert.equal((await hashGet(`${cache.url}/v2/keep/blobs/${a.layer}`)).digest, a.layer);
  await proxy.stop();
  await new Promise((r) => setTimeout(r, 5));
  const m = await request(`${cache.url}/v2/keep/manifests/v1`);
  assert.equal(m.status, 200, m.text);
  assert.deepEqual(m.body, a.manifest);
  const blob = await hashGet(`${cache.url}/v2/keep/blobs/${a.layer}`);
  assert.deepEqual([blob.status, blob.digest], [200, a.layer]);
  const miss = await request(`${cache.url}/v2/never/manifests/v1`);
  assert.equal(miss.status, 503);
  assert.match(specError(miss).message, /^the upstream registry http:\/\/127\.0\.0\.1:\d+ could not be asked .*only what this cache already holds can be pulled$/);
});

let rgw: Rgw | string | undefined;
after(() => (typeof rgw === 'object' ? rgw.stop() : undefined));

test('the cache on S3 storage: pulled once, verified, kept in the bucket, served after the upstream stopped', async (t) => {
  if (!requirePeer(t, 'docker-registry')) return;
  rgw = await startRgw();
  if (typeof rgw === 'string') return void t.skip(rgw);
  const { proxy } = await upstreamWithCounter(t);
  const img = await pushUpstream(proxy.url, 'on/s3', 'v1', randomBytes(7 * MiB), 's3');
  proxy.log.length = 0;
  const cache = await startTestServer(t, { ...(await s3Options(rgw)), proxy: proxy.url });
  const gets = await Promise.all(Array.from({ length: 3 }, () => hashGet(`${cache.url}/v2/on/s3/blobs/${img.layer}`)));
  for (const g of gets) assert.deepEqual([g.status, g.digest], [200, img.layer]);
  assert.equal(blobGets(proxy, img.layer), 1);
  await proxy.stop();
  const again = await hashGet(`${cache.url}/v2/on/s3/blobs/${img.layer}`);
  assert.deepEqual([again.status, again.digest], [200, img.layer]);
});
