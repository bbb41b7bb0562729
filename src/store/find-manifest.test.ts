/**
 * Digest forms of a reference in the local store (issue 14, item 11): a bare `sha256:…` names any
 * manifest in the store; `name@sha256:…` only a manifest of that repository (a made-up name with
 * a real digest names nothing), for resolve, tag's source and untag alike.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalStore } from './store.js';
import { digestBytes } from '../oci/digest.js';
import { canonicalJsonBytes } from '../oci/canonical-json.js';
import { OCI_INDEX, OCI_MANIFEST } from '../oci/media-types.js';
import { hasErrorCode } from '../errors.js';
import { mpk } from '../test-support/cli.js';
import { tempDir } from '../test-support/tmp.js';

const blob = (s: string | Buffer, mediaType = 'application/octet-stream') => ({ mediaType, digest: digestBytes(s), size: Buffer.byteLength(s) });

async function putManifest(store: LocalStore, layer: string) {
  const cfg = blob('{}', 'application/vnd.oci.empty.v1+json');
  await store.push(cfg, Buffer.from('{}'));
  const l = blob(layer);
  await store.push(l, Buffer.from(layer));
  const bytes = canonicalJsonBytes({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: cfg, layers: [l] });
  const m = { mediaType: OCI_MANIFEST, digest: digestBytes(bytes), size: bytes.length };
  await store.push(m, bytes);
  return { manifest: m, layer: l };
}

const notFound = (re: RegExp) => (e: unknown) => hasErrorCode(e, 'NOT_FOUND') && re.test(`${(e as Error).message} ${(e as { hint?: string }).hint}`);

test('resolve: bare sha256 names any manifest; name@sha256 only a manifest of that repository', async (t) => {
  const store = await LocalStore.open(await tempDir(t));
  t.after(() => store.close());
  const a = await putManifest(store, 'a');
  const loose = await putManifest(store, 'never tagged');
  await store.tag(a.manifest, 'models/x:v1');
  await store.tag(a.manifest, 'other/y:1');
  const b = await putManifest(store, 'b');
  await store.tag(b.manifest, 'models/x:v2');

  assert.equal((await store.resolve(a.manifest.digest)).digest, a.manifest.digest);
  assert.deepEqual(await store.resolve(loose.manifest.digest), loose.manifest, 'an untagged manifest blob, described by its own mediaType');
  await assert.rejects(store.resolve(a.layer.digest), notFound(/is a blob in the store, not a manifest/));
  await assert.rejects(store.resolve(`sha256:${'0'.repeat(64)}`), notFound(/no manifest with that digest/));

  assert.equal((await store.resolve(`models/x@${a.manifest.digest}`)).digest, a.manifest.digest);
  assert.equal((await store.resolve(`models/x:v1@${a.manifest.digest}`)).digest, a.manifest.digest);
  assert.equal((await store.resolve(`models/x@${b.manifest.digest}`)).digest, b.manifest.digest);
  await assert.rejects(store.resolve(`models/x:v2@${a.manifest.digest}`), notFound(/models\/x:v2 has no manifest/));
  await assert.rejects(store.resolve(`nonexist/foo@${a.manifest.digest}`), notFound(/nonexist\/foo has no manifest .* stored as models\/x:v1, other\/y:1/));
  await assert.rejects(store.resolve(`models/x@${loose.manifest.digest}`), notFound(/models\/x has no manifest/));

  // A platform manifest listed by an index stored under the name belongs to that repository.
  const idxBytes = canonicalJsonBytes({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [loose.manifest] });
  const idx = { mediaType: OCI_INDEX, digest: digestBytes(idxBytes), size: idxBytes.length };
  await store.push(idx, idxBytes);
  await store.tag(idx, 'multi/m:1');
  assert.deepEqual(await store.resolve(`multi/m@${loose.manifest.digest}`), loose.manifest);
  await assert.rejects(store.resolve(`models/x@${loose.manifest.digest}`), notFound(/models\/x has no manifest/));
});

test('untag: name@sha256 removes only that repository\'s names; bare sha256 every name of the manifest', async (t) => {
  const store = await LocalStore.open(await tempDir(t));
  t.after(() => store.close());
  const a = await putManifest(store, 'a');
  for (const n of ['models/x:v1', 'models/x:v2', 'other/y:1']) await store.tag(a.manifest, n);
  await assert.rejects(store.untag(`nonexist/foo@${a.manifest.digest}`), notFound(/no such model/));
  await store.untag(`models/x@${a.manifest.digest}`);
  assert.deepEqual((await store.list()).map((e) => e.reference), ['other/y:1']);
  await store.tag(a.manifest, 'models/x:v1');
  await store.untag(a.manifest.digest);
  assert.deepEqual(await store.list(), []);
  await assert.rejects(store.untag(a.manifest.digest), notFound(/no such model/));
});

test('mpk tag sha256:… NAME and mpk rm sha256:… work; a made-up name@digest is not a source', async (t) => {
  const env = { MPK_HOME: await tempDir(t) };
  const store = await LocalStore.open(env.MPK_HOME);
  const a = await putManifest(store, 'a');
  await store.tag(a.manifest, 'models/x:v1');
  store.close();
  const tag = await mpk(env, '/', 'tag', a.manifest.digest, 'copy/z:1');
  assert.equal(tag.code, 0, tag.stderr);
  const made = await mpk(env, '/', 'tag', `nonexist/foo@${a.manifest.digest}`, 'bad/n:1');
  assert.equal(made.code, 3, made.stderr);
  assert.match(made.stderr, /nonexist\/foo has no manifest sha256:\S+ in the store/);
  assert.match((await mpk(env, '/', 'ls', '-q')).stdout, /^copy\/z:1\nmodels\/x:v1\n$/);
  assert.equal((await mpk(env, '/', 'tag', 'models/x:v1', a.manifest.digest)).code, 2, 'a digest is not a name to give');
  const rm = await mpk(env, '/', 'rm', a.manifest.digest);
  assert.equal(rm.code, 0, rm.stderr);
  assert.equal((await mpk(env, '/', 'ls', '-q')).stdout, '');
});
