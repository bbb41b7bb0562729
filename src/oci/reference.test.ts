import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatReference, parseReference, referenceName } from './reference.js';
import { hasErrorCode } from '../errors.js';

const D = `sha256:${'a'.repeat(64)}`;

test('parseReference: the forms of the distribution grammar', () => {
  const cases: [string, object][] = [
    ['llama', { repository: 'llama', tag: 'latest' }],
    ['models/llama:v1', { repository: 'models/llama', tag: 'v1' }],
    ['localhost:5000/models/llama:v1', { registry: 'localhost:5000', repository: 'models/llama', tag: 'v1' }],
    ['localhost/x', { registry: 'localhost', repository: 'x', tag: 'latest' }],
    ['ghcr.io/org/sub/model:8b-q4', { registry: 'ghcr.io', repository: 'org/sub/model', tag: '8b-q4' }],
    [`reg.io/m@${D}`, { registry: 'reg.io', repository: 'm', digest: D }],
    [`reg.io/m:t@${D}`, { registry: 'reg.io', repository: 'm', tag: 't', digest: D }],
    ['127.0.0.1:5000/a__b/c-d.e:T_1.2-x', { registry: '127.0.0.1:5000', repository: 'a__b/c-d.e', tag: 'T_1.2-x' }],
    ['[::1]:5000/m:1', { registry: '[::1]:5000', repository: 'm', tag: '1' }],
    // Host names are case-insensitive: kept lowercase (one local name, one saved login, plain http for LOCALHOST).
    ['LOCALHOST:5000/models/llama:v1', { registry: 'localhost:5000', repository: 'models/llama', tag: 'v1' }],
    ['LocalHost/x', { registry: 'localhost', repository: 'x', tag: 'latest' }],
    ['Reg.Example.IO/m:V1', { registry: 'reg.example.io', repository: 'm', tag: 'V1' }],
    ['[::FFFF:7F00:1]:5000/m:1', { registry: '[::ffff:7f00:1]:5000', repository: 'm', tag: '1' }],
  ];
  for (const [input, want] of cases) assert.deepEqual(parseReference(input), want, input);
});

test('parseReference: round trip through formatReference', () => {
  for (const r of ['a/b:c', `h.io:1/a@${D}`, 'x:latest']) assert.equal(formatReference(parseReference(r)), r);
  assert.equal(referenceName(parseReference('h.io/a/b:c')), 'h.io/a/b');
});

test('parseReference: refuses bad references with clear errors', () => {
  const bad: [string, RegExp][] = [
    ['', /empty/],
    ['Models/Llama:v1', /lowercase.*try "models\/llama:v1"/s],
    ['a b', /white space/],
    ['m:-bad', /tag/],
    [`m:${'x'.repeat(129)}`, /tag/],
    ['m@sha256:abc', /digest/],
    ['m@md5:' + 'a'.repeat(32), /unsupported digest algorithm|digest/],
    ['a//b', /path component/],
    ['a/-b', /path component/],
    ['a..b', /path component/],
    ['reg.io/', /no repository/],
    ['x'.repeat(256), /longer than 255/],
  ];
  for (const [input, re] of bad) {
    assert.throws(() => parseReference(input), (e: unknown) => hasErrorCode(e, 'INVALID_REFERENCE') && re.test(`${(e as Error).message} ${(e as { hint?: string }).hint}`), input);
  }
});
