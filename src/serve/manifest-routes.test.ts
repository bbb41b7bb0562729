/**
 * Spec tests of manifests (end-3, end-7, end-9) and referrers (end-12a/12b) over HTTP: by tag and
 * by digest, validation errors, subject → OCI-Subject and the referrers list, deletes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { OCI_INDEX, OCI_MANIFEST, putBlob, putImage, request, sha256, sha512, specError, startTestServer } from '../test-support/serve.js';

const put = (base: string, name: string, ref: string, body: Buffer | string, type: string | undefined = OCI_MANIFEST) =>
  request(`${base}/v2/${name}/manifests/${ref}`, { method: 'PUT', body, headers: type ? { 'content-type': type } : {} });

test('PUT by tag (201, Location, digest); GET and HEAD by tag and by digest answer the exact bytes and type', async (t) => {
  const s = await startTestServer(t);
  const img = await putImage(s.url, 'team/model', 'v1');
  assert.equal(img.res.headers.location, `/v2/team/model/manifests/${img.digest}`);
  assert.equal(img.res.headers['docker-content-digest'], img.digest);
  assert.equal(img.res.headers['oci-subject'], undefined);
  for (const ref of ['v1', img.digest]) {
    const g = await request(`${s.url}/v2/team/model/manifests/${ref}`, { headers: { accept: OCI_MANIFEST } });
    assert.equal(g.status, 200, ref);
    assert.deepEqual(g.body, img.bytes);
    assert.equal(g.headers['content-type'], OCI_MANIFEST);
    assert.equal(g.headers['docker-content-digest'], img.digest);
    assert.equal(g.headers['content-length'], String(img.bytes.length));
    const h = await request(`${s.url}/v2/team/model/manifests/${ref}`, { method: 'HEAD' });
    assert.equal(h.status, 200);
    assert.equal(h.headers['content-length'], String(img.bytes.length));
    assert.equal(h.headers['docker-content-digest'], img.digest);
    assert.equal(h.body.length, 0);
  }
  // Another repository does not see it.
  const other = await request(`${s.url}/v2/team/other/manifests/${img.digest}`);
  assert.equal(other.status, 404);
  assert.deepEqual(other.json(), { errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown to registry', detail: { reference: img.digest } }] });
});

test('PUT by digest: the digest must match (400 DIGEST_INVALID otherwise); sha512 references work', async (t) => {
  const s = await startTestServer(t);
  const img = await putImage(s.url, 'a', 'v1');
  const ok = await put(s.url, 'a', img.digest, img.bytes);
  assert.equal(ok.status, 201);
  const wrong = await put(s.url, 'a', sha256('other'), img.bytes);
  assert.equal(wrong.status, 400);
  assert.equal(specError(wrong).code, 'DIGEST_INVALID');
  const d512 = sha512(img.bytes);
  const r512 = await put(s.url, 'a', d512, img.bytes);
  assert.equal(r512.status, 201, r512.text);
  assert.equal(r512.headers['docker-content-digest'], d512);
  assert.deepEqual((await request(`${s.url}/v2/a/manifests/${d512}`)).body, img.bytes);
});

test('invalid manifests are 400 MANIFEST_INVALID, missing blobs 400 MANIFEST_BLOB_UNKNOWN, over 4 MiB 413', async (t) => {
  const s = await startTestServer(t);
  const cd = await putBlob(s.url, 'v', '{}');
  const good = (layers: unknown[]) => JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cd, size: 2 }, layers });
  for (const [body, type] of [
    ['not json', OCI_MANIFEST],
    [JSON.stringify({ schemaVersion: 1 }), OCI_MANIFEST],
    [good([{ mediaType: 'x/y', digest: 'sha256:short', size: 1 }]), OCI_MANIFEST],
    [good([]), 'application/vnd.docker.distribution.manifest.v1+prettyjws'],
    [good([]), OCI_INDEX],
  ] as const) {
    const r = await put(s.url, 'v', 'bad', body, type);
    assert.equal(r.status, 400, body);
    assert.equal(specError(r).code, 'MANIFEST_INVALID', body);
  }
  const missing = sha256('never pushed');
  const r = await put(s.url, 'v', 'm', good([{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: missing, size: 12 }]));
  assert.equal(r.status, 400);
  assert.deepEqual(r.json(), { errors: [{ code: 'MANIFEST_BLOB_UNKNOWN', message: 'manifest references a manifest or blob unknown to registry', detail: { digest: missing } }] });
  const wrongSize = await put(s.url, 'v', 'm', good([{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: cd, size: 3 }]));
  assert.equal(wrongSize.status, 400);
  assert.equal(specError(wrongSize).code, 'MANIFEST_INVALID');
  const huge = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20);
  const big = await put(s.url, 'v', 'big', huge);
  assert.equal(big.status, 413);
  assert.equal(specError(big).code, 'MANIFEST_INVALID');
  // Without Content-Type, the document's own mediaType decides.
  const noType = await put(s.url, 'v', 'nt', good([]), undefined);
  assert.equal(noType.status, 201, noType.text);
  assert.equal((await request(`${s.url}/v2/v/manifests/nt`)).headers['content-type'], OCI_MANIFEST);
});

test('malformed references are 400 (never 500) to a PUT and as digests; unknown tags 404 MANIFEST_UNKNOWN', async (t) => {
  const s = await startTestServer(t);
  await putImage(s.url, 'a', 'v1');
  for (const ref of ['.bad', '-bad', 'sha256:123', 'sha256:', `${'x'.repeat(129)}`, 'md5:abcd']) {
    const r = await request(`${s.url}/v2/a/manifests/${encodeURIComponent(ref)}`, { method: 'PUT', body: '{}', headers: { 'content-type': OCI_MANIFEST } });
    assert.equal(r.status, 400, `PUT ${ref}`);
    assert.ok(['DIGEST_INVALID', 'MANIFEST_INVALID'].includes(specError(r).code), r.text);
  }
  for (const ref of ['sha256:123', 'sha256:', 'md5:abcd']) {
    for (const method of ['GET', 'DELETE']) {
      const r = await request(`${s.url}/v2/a/manifests/${encodeURIComponent(ref)}`, { method });
      assert.equal(r.status, 400, `${method} ${ref}`);
      assert.equal(specError(r).code, 'DIGEST_INVALID', r.text);
    }
  }
  const unknown = await request(`${s.url}/v2/a/manifests/nope`);
  assert.equal(unknown.status, 404);
  assert.equal(specError(unknown).code, 'MANIFEST_UNKNOWN');
});

test('GET, HEAD and DELETE by a reference that cannot be a tag (.INVALID_MANIFEST_NAME) are 404 MANIFEST_UNKNOWN, as distribution answers', async (t) => {
  const s = await startTestServer(t);
  await putImage(s.url, 'a', 'v1');
  for (const ref of ['.INVALID_MANIFEST_NAME', '-bad', 'x'.repeat(129)]) {
    for (const method of ['GET', 'HEAD', 'DELETE']) {
      const r = await request(`${s.url}/v2/a/manifests/${ref}`, { method });
      assert.equal(r.status, 404, `${method} ${ref}: ${r.text}`);
      if (method !== 'HEAD') assert.deepEqual(specError(r), { code: 'MANIFEST_UNKNOWN', message: 'manifest unknown to registry', detail: { reference: ref } });
    }
  }
});

test('an index needs its manifests in the repository; Docker v2 media types are accepted', async (t) => {
  const s = await startTestServer(t);
  const a = await putImage(s.url, 'multi', 'a', { seed: 'a' });
  const index = (digest: string) =>
    JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest, size: a.bytes.length, platform: { architecture: 'amd64', os: 'linux' } }] });
  const ok = await put(s.url, 'multi', 'all', index(a.digest), OCI_INDEX);
  assert.equal(ok.status, 201, ok.text);
  assert.equal((await request(`${s.url}/v2/multi/manifests/all`)).headers['content-type'], OCI_INDEX);
  const missing = await put(s.url, 'multi', 'broken', index(sha256('nope')), OCI_INDEX);
  assert.equal(missing.status, 400);
  assert.equal(specError(missing).code, 'MANIFEST_BLOB_UNKNOWN');
  const docker = 'application/vnd.docker.distribution.manifest.v2+json';
  const cfg = await putBlob(s.url, 'multi', '{"a":1}');
  const body = JSON.stringify({ schemaVersion: 2, mediaType: docker, config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: cfg, size: 7 }, layers: [] });
  const d = await put(s.url, 'multi', 'docker', body, docker);
  assert.equal(d.status, 201, d.text);
  assert.equal((await request(`${s.url}/v2/multi/manifests/docker`)).headers['content-type'], docker);
});

test('an index entry must be a manifest or index stored here: a layer or config blob is 400 MANIFEST_INVALID', async (t) => {
  const s = await startTestServer(t);
  const a = await putImage(s.url, 'ix', 'a', { seed: 'a' });
  const layerBytes = Buffer.from('layer of a');
  const entry = (digest: string, size: number, mediaType = OCI_MANIFEST) => ({ mediaType, digest, size, platform: { architecture: 'amd64', os: 'linux' } });
  const index = (...manifests: unknown[]) => JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests });
  for (const [what, body] of [
    ['a layer, described as a manifest', index(entry(a.digest, a.bytes.length), entry(a.layer, layerBytes.length))],
    ['a layer, described as a layer', index(entry(a.layer, layerBytes.length, 'application/vnd.oci.image.layer.v1.tar'))],
    ['a config', index(entry(a.config, Buffer.from(JSON.stringify({ seed: 'a' })).length))],
  ] as const) {
    const r = await put(s.url, 'ix', 'bad', body, OCI_INDEX);
    assert.equal(r.status, 400, `${what}: ${r.text}`);
    const e = specError(r);
    assert.equal(e.code, 'MANIFEST_INVALID', what);
    assert.match(JSON.stringify(e.detail), /not a manifest or index/, what);
  }
  assert.equal((await request(`${s.url}/v2/ix/manifests/bad`)).status, 404);
  // A manifest and an index of it are fine as entries.
  const one = await put(s.url, 'ix', 'one', index(entry(a.digest, a.bytes.length)), OCI_INDEX);
  assert.equal(one.status, 201, one.text);
  const nested = await put(s.url, 'ix', 'nested', index(entry(sha256(index(entry(a.digest, a.bytes.length))), Buffer.byteLength(index(entry(a.digest, a.bytes.length))), OCI_INDEX)), OCI_INDEX);
  assert.equal(nested.status, 201, nested.text);
});

test('a manifest nested deeper than 64 levels is 400 MANIFEST_INVALID before it is parsed (a 200,000-deep array included)', async (t) => {
  const s = await startTestServer(t);
  const a = await putImage(s.url, 'deep', 'a', { seed: 'a' });
  const doc = JSON.parse(a.bytes.toString('utf8')) as Record<string, unknown>;
  const withExtra = (depth: number) => {
    const json = JSON.stringify({ ...doc, extra: 'X' });
    return json.replace('"X"', `${'['.repeat(depth)}"x"${']'.repeat(depth)}`);
  };
  for (const depth of [200_000, 64]) {
    const r = await put(s.url, 'deep', 'd', withExtra(depth));
    assert.equal(r.status, 400, `${depth}: ${r.text.slice(0, 200)}`);
    assert.equal(specError(r).code, 'MANIFEST_INVALID');
    assert.match(JSON.stringify(specError(r).detail), /nested deeper than 64/);
  }
  // Brackets inside strings do not count; 62 levels under the document's own are fine.
  const inString = JSON.stringify({ ...doc, annotations: { 'org.example': '['.repeat(1000) } });
  assert.equal((await put(s.url, 'deep', 's', inString)).status, 201);
  assert.equal((await put(s.url, 'deep', 'ok', withExtra(62))).status, 201);
  assert.equal((await request(`${s.url}/healthz`)).status, 200);
});

test('subject: PUT answers OCI-Subject; the referrers API lists it (artifactType, annotations), filters by artifactType', async (t) => {
  const s = await startTestServer(t);
  const subject = sha256('a manifest that is not pushed yet');
  const subj = { mediaType: OCI_MANIFEST, digest: subject, size: 33 };
  const sig = await putImage(s.url, 'app', 'sig', { seed: 's', extra: { artifactType: 'application/vnd.example.sig', subject: subj, annotations: { 'org.example': 'yes' } } });
  assert.equal(sig.res.headers['oci-subject'], subject);
  const sbom = await putImage(s.url, 'app', 'sbom', { seed: 'b', extra: { subject: subj } });
  const r = await request(`${s.url}/v2/app/referrers/${subject}`);
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], OCI_INDEX);
  assert.equal(r.headers['oci-filters-applied'], undefined);
  const doc = r.json<{ schemaVersion: number; mediaType: string; manifests: Array<Record<string, unknown>> }>();
  assert.equal(doc.schemaVersion, 2);
  assert.equal(doc.mediaType, OCI_INDEX);
  const byDigest = new Map(doc.manifests.map((m) => [m.digest, m]));
  assert.deepEqual(byDigest.get(sig.digest), { mediaType: OCI_MANIFEST, digest: sig.digest, size: sig.bytes.length, artifactType: 'application/vnd.example.sig', annotations: { 'org.example': 'yes' } });
  // No artifactType on the manifest: the config's media type stands in.
  assert.deepEqual(byDigest.get(sbom.digest), { mediaType: OCI_MANIFEST, digest: sbom.digest, size: sbom.bytes.length, artifactType: 'application/vnd.oci.image.config.v1+json' });
  const f = await request(`${s.url}/v2/app/referrers/${subject}?artifactType=${encodeURIComponent('application/vnd.example.sig')}`);
  assert.equal(f.headers['oci-filters-applied'], 'artifactType');
  assert.deepEqual(f.json<{ manifests: Array<{ digest: string }> }>().manifests.map((m) => m.digest), [sig.digest]);
  const none = await request(`${s.url}/v2/app/referrers/${sha256('no referrers')}`);
  assert.equal(none.status, 200);
  assert.deepEqual(none.json(), { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] });
  const bad = await request(`${s.url}/v2/app/referrers/sha256:nothex`);
  assert.equal(bad.status, 400);
  assert.equal(specError(bad).code, 'DIGEST_INVALID');
  // Deleting the referrer takes it off the list.
  assert.equal((await request(`${s.url}/v2/app/manifests/${sig.digest}`, { method: 'DELETE' })).status, 202);
  assert.deepEqual((await request(`${s.url}/v2/app/referrers/${subject}`)).json<{ manifests: Array<{ digest: string }> }>().manifests.map((m) => m.digest), [sbom.digest]);
});

test('DELETE by tag removes the tag only; by digest the manifest and its tags (202); unknown 404', async (t) => {
  const s = await startTestServer(t);
  const img = await putImage(s.url, 'd', 'v1');
  assert.equal((await put(s.url, 'd', 'v2', img.bytes)).status, 201);
  assert.equal((await request(`${s.url}/v2/d/manifests/v1`, { method: 'DELETE' })).status, 202);
  assert.equal((await request(`${s.url}/v2/d/manifests/v1`)).status, 404);
  assert.equal((await request(`${s.url}/v2/d/manifests/v2`)).status, 200);
  assert.equal((await request(`${s.url}/v2/d/manifests/${img.digest}`)).status, 200);
  assert.equal((await request(`${s.url}/v2/d/manifests/${img.digest}`, { method: 'DELETE' })).status, 202);
  for (const ref of ['v2', img.digest]) assert.equal((await request(`${s.url}/v2/d/manifests/${ref}`)).status, 404, ref);
  assert.deepEqual((await request(`${s.url}/v2/d/tags/list`)).json(), { name: 'd', tags: [] });
  for (const ref of ['v1', img.digest]) {
    const r = await request(`${s.url}/v2/d/manifests/${ref}`, { method: 'DELETE' });
    assert.equal(r.status, 404);
    assert.equal(specError(r).code, 'MANIFEST_UNKNOWN');
  }
});

test('a refused tag delete is 405 UNSUPPORTED (--delete digest); --delete none refuses every delete', async (t) => {
  const s = await startTestServer(t, { deletes: 'digest' });
  const img = await putImage(s.url, 'd', 'v1');
  const r = await request(`${s.url}/v2/d/manifests/v1`, { method: 'DELETE' });
  assert.equal(r.status, 405);
  assert.equal(specError(r).code, 'UNSUPPORTED');
  assert.equal((await request(`${s.url}/v2/d/manifests/v1`)).status, 200);
  assert.equal((await request(`${s.url}/v2/d/manifests/${img.digest}`, { method: 'DELETE' })).status, 202);
  const n = await startTestServer(t, { deletes: 'none' });
  const img2 = await putImage(n.url, 'd', 'v1');
  for (const ref of ['v1', img2.digest]) {
    const x = await request(`${n.url}/v2/d/manifests/${ref}`, { method: 'DELETE' });
    assert.equal(x.status, 405);
    assert.equal(specError(x).code, 'UNSUPPORTED');
  }
});

test('manifest bodies held in memory are bounded: a PUT waits while others hold the budget; one whose client left gives it back', async (t) => {
  const MiB4 = 4 * 1024 * 1024;
  const s = await startTestServer(t, { manifestMemoryBytes: MiB4 });
  const img = await putImage(s.url, 'mem', 'v1');
  /** A PUT declaring a 4 MiB body, of which it sends a few bytes only. */
  const hog = (): http.ClientRequest => {
    const req = http.request(`${s.url}/v2/mem/manifests/big`, { method: 'PUT', headers: { 'content-type': OCI_MANIFEST, 'content-length': MiB4 }, agent: false });
    req.on('error', () => undefined);
    req.write('{"schemaVersion":');
    return req;
  };
  const holder = hog();
  await new Promise((r) => setTimeout(r, 50));
  const leaver = hog(); // waits for the budget, then leaves
  await new Promise((r) => setTimeout(r, 50));
  let answered = false;
  const small = put(s.url, 'mem', 'v2', img.bytes).then((r) => ((answered = true), r));
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(answered, false, 'a PUT is read while 4 MiB of bodies are already held');
  leaver.destroy();
  await new Promise((r) => setTimeout(r, 50));
  holder.destroy();
  const r = await Promise.race([small, new Promise<'hung'>((res) => setTimeout(() => res('hung'), 3000))]);
  assert.notEqual(r, 'hung', 'the budget of the PUT whose client left was never given back');
  assert.equal(r !== 'hung' && r.status, 201);
});

test('a referrers list past 4 MiB comes in pages of at most 4 MiB, each linking to the next', async (t) => {
  const s = await startTestServer(t);
  const subject = sha256('a subject with large referrers');
  const subj = { mediaType: OCI_MANIFEST, digest: subject, size: 30 };
  const pushed: string[] = [];
  for (const seed of ['r1', 'r2', 'r3']) {
    const note = seed.repeat(768 * 1024); // 1.5 MiB of annotation, copied into the referrers entry
    pushed.push((await putImage(s.url, 'big', seed, { seed, extra: { artifactType: 'application/vnd.example.note', subject: subj, annotations: { 'org.example.note': note } } })).digest);
  }
  const seen: string[] = [];
  let next: string | undefined = `/v2/big/referrers/${subject}?artifactType=${encodeURIComponent('application/vnd.example.note')}`;
  let pages = 0;
  while (next) {
    const r = await request(`${s.url}${next}`);
    assert.equal(r.status, 200);
    assert.ok(r.body.length <= 4 * 1024 * 1024, `a page of ${r.body.length} bytes`);
    assert.equal(r.headers['oci-filters-applied'], 'artifactType');
    seen.push(...r.json<{ manifests: Array<{ digest: string }> }>().manifests.map((m) => m.digest));
    next = /^<([^>]+)>; rel="next"$/.exec(String(r.headers.link ?? ''))?.[1];
    pages++;
  }
  assert.equal(pages, 2);
  assert.deepEqual(seen, [...pushed].sort());
});
