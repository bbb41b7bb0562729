/** Catalog URLs from the outside: page paths, the query, and where a sign-in may send the browser. */
import assert from 'node:assert/strict';
import test from 'node:test';
import { parseCatalogQuery, parsePagePath, safeNext } from './paths.js';

test('page paths: names and references are validated; anything else names no page', () => {
  assert.deepEqual(parsePagePath('/'), { kind: 'catalog' });
  assert.deepEqual(parsePagePath('/-/api/catalog'), { kind: 'catalog' });
  assert.deepEqual(parsePagePath('/r/a/b/c'), { kind: 'repo', name: 'a/b/c' });
  assert.deepEqual(parsePagePath('/-/api/r/a/b/'), { kind: 'repo', name: 'a/b' });
  assert.deepEqual(parsePagePath('/r/a/b/-/v1.0'), { kind: 'model', name: 'a/b', ref: 'v1.0' });
  const d = `sha256:${'a'.repeat(64)}`;
  assert.deepEqual(parsePagePath(`/r/a/-/${d}`), { kind: 'model', name: 'a', ref: d });
  for (const bad of ['/r/', '/r/A', '/r/a/../b', '/r/a/-/', '/r/a/-/sha256:zz', '/r/a/-/.tag', '/r/a/-/<script>', '/x', '/r/a//b', `/r/${'a'.repeat(256)}`]) {
    assert.equal(parsePagePath(bad), undefined, bad);
  }
});

test('the catalog query: known sorts only, bounded text and numbers', () => {
  assert.deepEqual(parseCatalogQuery(new URLSearchParams('q=llama&arch=llama&format=gguf&quant=Q8_0&sort=size&page=3&n=20')), {
    text: 'llama',
    architecture: 'llama',
    format: 'gguf',
    quantization: 'Q8_0',
    sort: 'size',
    page: 3,
    perPage: 20,
  });
  assert.deepEqual(parseCatalogQuery(new URLSearchParams('sort=evil&page=-1&n=1e9&q=')), {});
  assert.equal(parseCatalogQuery(new URLSearchParams(`q=${'x'.repeat(5000)}`)).text!.length, 200);
});

test('after sign-in the browser goes only to a path of this site', () => {
  assert.equal(safeNext('/r/a/-/v1?x=1'), '/r/a/-/v1?x=1');
  for (const bad of [null, '', '//evil.example/', '/\\evil.example', 'https://evil.example/', 'javascript:alert(1)', '/\nSet-Cookie: x', 'r/a']) assert.equal(safeNext(bad), '/', String(bad));
});
