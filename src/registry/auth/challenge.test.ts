import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mergeScopes, parseChallenges } from './challenge.js';
import { nextLink } from '../remote-tags.js';

test('parses bearer and basic challenges with quoted commas and escapes', () => {
  const [b] = parseChallenges('Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push"');
  assert.equal(b!.scheme, 'bearer');
  assert.deepEqual(b!.params, { realm: 'https://auth.example.com/token', service: 'registry.example.com', scope: 'repository:a/b:pull,push' });
  const [basic] = parseChallenges('Basic realm="say \\"hi\\", please"');
  assert.equal(basic!.scheme, 'basic');
  assert.equal(basic!.params.realm, 'say "hi", please');
  const two = parseChallenges(['Basic realm="x"', 'Bearer realm="https://t/token",error="insufficient_scope"']);
  assert.deepEqual(two.map((c) => c.scheme), ['basic', 'bearer']);
  assert.equal(two[1]!.params.error, 'insufficient_scope');
  assert.deepEqual(parseChallenges(undefined), []);
});

test('merges scopes by resource, sorted, so equal sets share one cached token', () => {
  assert.deepEqual(mergeScopes(['repository:a:push', 'repository:a:pull', 'repository:b:pull']), ['repository:a:pull,push', 'repository:b:pull']);
  assert.deepEqual(mergeScopes(['repository:b:pull', 'repository:a:pull,push']), mergeScopes(['repository:a:push,pull', 'repository:b:pull']));
});

test('follows the rel="next" Link of a tag page, relative or absolute', () => {
  assert.equal(nextLink('</v2/a/tags/list?n=2&last=b>; rel="next"'), '/v2/a/tags/list?n=2&last=b');
  assert.equal(nextLink('<https://r.example/v2/a/tags/list?last=c>; rel=next'), 'https://r.example/v2/a/tags/list?last=c');
  assert.equal(nextLink('</x>; rel="prev"'), undefined);
  assert.equal(nextLink(undefined), undefined);
});
