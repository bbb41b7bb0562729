/** Spec tests of tag listing (end-8a/8b) and _catalog: sorted, `n`, `last`, Link. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OCI_MANIFEST, putImage, request, specError, startTestServer } from '../test-support/serve.js';

test('tags are sorted lexically (code unit order); n, last and Link page through them', async (t) => {
  const s = await startTestServer(t);
  const img = await putImage(s.url, 'lib/app', 'b');
  const tags = ['b', 'A', 'a', '10', '9', '_x', 'a.1', 'Z-9'];
  for (const tag of tags.slice(1)) {
    const r = await request(`${s.url}/v2/lib/app/manifests/${tag}`, { method: 'PUT', body: img.bytes, headers: { 'content-type': OCI_MANIFEST } });
    assert.equal(r.status, 201);
  }
  const sorted = [...tags].sort();
  assert.deepEqual(sorted, ['10', '9', 'A', 'Z-9', '_x', 'a', 'a.1', 'b']);
  const all = await request(`${s.url}/v2/lib/app/tags/list`);
  assert.equal(all.status, 200);
  assert.equal(all.headers['content-type'], 'application/json');
  assert.deepEqual(all.json(), { name: 'lib/app', tags: sorted });
  assert.equal(all.headers.link, undefined);

  const seen: string[] = [];
  let next: string | undefined = '/v2/lib/app/tags/list?n=3';
  let pages = 0;
  while (next) {
    const r = await request(`${s.url}${next}`);
    const page = r.json<{ tags: string[] }>().tags;
    pages++;
    assert.ok(page.length <= 3);
    seen.push(...page);
    next = /^<([^>]+)>; rel="next"$/.exec(String(r.headers.link ?? ''))?.[1];
    if (next) assert.equal(page.length, 3, 'a page followed by a Link is full');
  }
  assert.deepEqual(seen, sorted);
  assert.equal(pages, 3);

  const zero = await request(`${s.url}/v2/lib/app/tags/list?n=0`);
  assert.deepEqual(zero.json(), { name: 'lib/app', tags: [] });
  assert.equal(zero.headers.link, undefined);
  assert.deepEqual((await request(`${s.url}/v2/lib/app/tags/list?last=a`)).json<{ tags: string[] }>().tags, ['a.1', 'b']);
  const two = await request(`${s.url}/v2/lib/app/tags/list?n=2&last=A`);
  assert.deepEqual(two.json<{ tags: string[] }>().tags, ['Z-9', '_x']);
  assert.equal(two.headers.link, '</v2/lib/app/tags/list?n=2&last=_x>; rel="next"');
  const bad = await request(`${s.url}/v2/lib/app/tags/list?n=-1`);
  assert.equal(bad.status, 400);
  const unknown = await request(`${s.url}/v2/lib/none/tags/list`);
  assert.equal(unknown.status, 404);
  assert.deepEqual(unknown.json(), { errors: [{ code: 'NAME_UNKNOWN', message: 'repository name not known to registry', detail: { name: 'lib/none' } }] });
  const parent = await request(`${s.url}/v2/lib/tags/list`);
  assert.equal(parent.status, 404, 'lib is only the path to lib/app, not a repository');
  assert.equal(specError(parent).code, 'NAME_UNKNOWN');
});

test('_catalog lists repositories sorted, with n, last and Link', async (t) => {
  const s = await startTestServer(t);
  const names = ['zeta', 'alpha/one', 'alpha/two', 'alpha', 'beta/deep/er'];
  for (const n of names) await putImage(s.url, n, 'v1');
  const all = await request(`${s.url}/v2/_catalog`);
  assert.equal(all.status, 200);
  assert.deepEqual(all.json(), { repositories: [...names].sort() });
  const p1 = await request(`${s.url}/v2/_catalog?n=2`);
  assert.deepEqual(p1.json(), { repositories: ['alpha', 'alpha/one'] });
  assert.equal(p1.headers.link, '</v2/_catalog?n=2&last=alpha%2Fone>; rel="next"');
  const p2 = await request(`${s.url}/v2/_catalog?n=2&last=alpha%2Fone`);
  assert.deepEqual(p2.json(), { repositories: ['alpha/two', 'beta/deep/er'] });
  const p3 = await request(`${s.url}/v2/_catalog?n=2&last=beta%2Fdeep%2Fer`);
  assert.deepEqual(p3.json(), { repositories: ['zeta'] });
  assert.equal(p3.headers.link, undefined);
});

test('unknown endpoints are 404 and wrong methods 405 with Allow, both with spec error bodies', async (t) => {
  const s = await startTestServer(t);
  const u = await request(`${s.url}/v2/a/unknown/thing`);
  assert.equal(u.status, 404);
  assert.equal(specError(u).code, 'UNSUPPORTED');
  const m = await request(`${s.url}/v2/a/tags/list`, { method: 'POST', body: 'x' });
  assert.equal(m.status, 405);
  assert.equal(m.headers.allow, 'GET');
  assert.equal(specError(m).code, 'UNSUPPORTED');
  const name = await request(`${s.url}/v2/Upper/Case/tags/list`);
  assert.equal(name.status, 400);
  assert.equal(specError(name).code, 'NAME_INVALID');
});
