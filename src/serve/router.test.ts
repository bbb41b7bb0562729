import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isValidName, parseReference, route, splitTarget } from './router.js';
import { ServeError } from './errors.js';
import { parseContentRange, parseRange } from './http-util.js';

const D = `sha256:${'a'.repeat(64)}`;

test('routes are matched by suffix, so names with slashes and endpoint words work', () => {
  assert.deepEqual(route('/v2/'), { kind: 'base' });
  assert.deepEqual(route('/v2/_catalog'), { kind: 'catalog' });
  assert.deepEqual(route('/v2/a/b/c/tags/list'), { kind: 'tags', name: 'a/b/c' });
  assert.deepEqual(route('/v2/a/manifests/v1'), { kind: 'manifest', name: 'a', reference: 'v1' });
  assert.deepEqual(route(`/v2/a/blobs/${D}`), { kind: 'blob', name: 'a', digest: D });
  assert.deepEqual(route('/v2/a/blobs/uploads/'), { kind: 'uploads', name: 'a' });
  assert.deepEqual(route('/v2/a/blobs/uploads'), { kind: 'uploads', name: 'a' });
  assert.deepEqual(route('/v2/a/blobs/uploads/123'), { kind: 'upload', name: 'a', id: '123' });
  assert.deepEqual(route(`/v2/a/referrers/${D}`), { kind: 'referrers', name: 'a', digest: D });
  // A repository called blobs/uploads, or manifests: the suffix decides.
  assert.deepEqual(route(`/v2/x/blobs/uploads/blobs/${D}`), { kind: 'blob', name: 'x/blobs/uploads', digest: D });
  assert.deepEqual(route('/v2/x/manifests/tags/list'), { kind: 'tags', name: 'x/manifests' });
  assert.deepEqual(route('/v3/x'), { kind: 'unknown' });
  assert.deepEqual(route('/v2/x/other'), { kind: 'unknown' });
});

test('invalid repository names are NAME_INVALID (400), before anything touches the disk', () => {
  for (const bad of ['A/b', 'a//b', '../etc', 'a/../b', 'a/.', '-a', 'a-', 'a/_x', 'a b', 'é', 'a'.repeat(256)]) {
    assert.equal(isValidName(bad), false, bad);
    assert.throws(() => route(`/v2/${bad}/tags/list`), (e: unknown) => e instanceof ServeError && e.status === 400 && e.code === 'NAME_INVALID', bad);
  }
  for (const good of ['a', 'a/b', 'a.b_c__d--e/f0', 'library/ubuntu', 'x'.repeat(255)]) assert.equal(isValidName(good), true, good);
});

test('references: a tag by the tag grammar, a digest when it has a colon; anything else 400', () => {
  assert.deepEqual(parseReference('v1.0_rc-2'), { tag: 'v1.0_rc-2' });
  assert.equal((parseReference(D) as { digest: string }).digest, D);
  assert.throws(() => parseReference('.hidden'), (e: unknown) => (e as ServeError).code === 'MANIFEST_INVALID');
  assert.throws(() => parseReference('x'.repeat(129)), (e: unknown) => (e as ServeError).status === 400);
  assert.throws(() => parseReference('sha256:abc'), (e: unknown) => (e as ServeError).code === 'DIGEST_INVALID');
  assert.throws(() => parseReference(`md5:${'a'.repeat(32)}`), (e: unknown) => (e as ServeError).code === 'DIGEST_INVALID');
});

test('percent-encoded digests are decoded; broken escapes are a 400', () => {
  assert.equal(splitTarget(`/v2/a/blobs/sha256%3A${'a'.repeat(64)}?x=1`).path, `/v2/a/blobs/${D}`);
  assert.equal(splitTarget('/v2/a/tags/list?n=2&last=b').query.get('n'), '2');
  assert.throws(() => splitTarget('/v2/a%zz/tags/list'), (e: unknown) => (e as ServeError).status === 400);
});

test('Range and Content-Range grammars', () => {
  assert.deepEqual(parseRange('bytes=0-9', 100), { start: 0, end: 9 });
  assert.deepEqual(parseRange('bytes=90-', 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=-10', 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=50-500', 100), { start: 50, end: 99 });
  assert.equal(parseRange('bytes=100-', 100), 'unsatisfiable');
  assert.equal(parseRange('bytes=5-1', 100), 'unsatisfiable');
  assert.equal(parseRange('bytes=0-1,5-6', 100), undefined);
  assert.deepEqual(parseContentRange('0-99'), { start: 0, end: 99 });
  assert.deepEqual(parseContentRange('bytes 100-199/*'), { start: 100, end: 199 });
  assert.equal(parseContentRange('5-1'), 'invalid');
  assert.equal(parseContentRange('abc'), 'invalid');
  assert.equal(parseContentRange(undefined), undefined);
});
