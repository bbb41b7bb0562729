/**
 * Signatures in registries: `mpk sign HOST/NAME:TAG` pushes the bundle as a referrer, `mpk
 * verify-signature` reads it back, and `mpk pull --require-signature` (and `mpk run`) refuse an
 * unsigned model or a failing signature with nothing stored. Against `mpk serve` (referrers API)
 * and docker-registry 2.8 (no API: the sha256-<hex> tag).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request, startTestServer } from '../test-support/serve.js';
import { fileRegistry } from '../test-support/registry-peer.js';
import { attachBundle, jsonError, opensslKey, signFixture, sigstoreVerify, type SignFixture } from '../test-support/signing.js';
import { writeTinyLlama } from '../test-support/tiny-llama.js';

const registry = fileRegistry();

/** What a store holds: index entries and blob files (none when the store was never made). */
async function stored(f: SignFixture, root: string): Promise<{ entries: number; blobs: number }> {
  const index = await readFile(join(f.dir, root, 'index.json'), 'utf8').catch(() => undefined);
  const blobs = await readdir(join(f.dir, root, 'blobs', 'sha256')).catch(() => []);
  return { entries: index ? JSON.parse(index).manifests.length : 0, blobs: blobs.length };
}

/** `withRun`: also through mpk run (which starts its engine first: seconds, so only against one registry). */
async function remoteFlow(f: SignFixture, host: string, withRun: boolean): Promise<void> {
  const key = opensslKey(f.dir, 'k');
  const other = opensslKey(f.dir, 'other');
  const digest = await f.build('local/m:1', 'a');
  await f.build('local/u:1', 'u');
  await f.ok('push', 'local/m:1', `${host}/sig/m:1`, '-q');
  await f.ok('push', 'local/u:1', `${host}/sig/u:1`, '-q');

  const signed = JSON.parse(await f.ok('sign', `${host}/sig/m:1`, '--key', key.priv, '--json'));
  assert.equal(signed.subject, digest, 'the digest the tag named when signing');
  const v = JSON.parse(await f.ok('verify-signature', `${host}/sig/m:1`, '--key', key.pub, '--json'));
  assert.equal(v.signature, signed.digest);
  assert.equal(v.source, `${host}/sig/m`);
  assert.equal(v.files, 6);

  // The bundle as the registry serves it verifies with Sigstore JS too.
  const tree = JSON.parse(await f.ok('referrers', `${host}/sig/m:1`, '--json'));
  const layer = tree.referrers[0].files[0];
  const res = await request(`http://${host}/v2/sig/m/blobs/${layer.digest}`);
  assert.equal(res.status, 200);
  await sigstoreVerify(res.body, key.pub);

  // Pull into fresh stores: signed with the key → stored with its signature; otherwise nothing stored.
  const pulled = await f.run('--store', join(f.dir, 'p1'), 'pull', `${host}/sig/m:1`, '--require-signature', key.pub, '--json', '-q');
  assert.equal(pulled.code, 0, pulled.stderr);
  const result = JSON.parse(pulled.stdout.trim().split('\n').pop()!);
  assert.equal(result.digest, digest);
  assert.equal(result.signature.digest, signed.digest);
  const again = JSON.parse(await f.ok('--store', join(f.dir, 'p1'), 'verify-signature', `${host}/sig/m:1`, '--key', key.pub, '--json'));
  assert.equal(again.signature, signed.digest);
  const local = JSON.parse(await f.ok('--store', join(f.dir, 'p1'), 'verify-signature', digest, '--key', key.pub, '--json'));
  assert.equal(local.source, 'the store', 'the verified bundle is kept in the store');

  // mpk run pulls the verified digest (the model here is no GGUF, so it stops after the pull).
  if (withRun) {
    const run = await f.run('--store', join(f.dir, 'p-run'), 'run', `${host}/sig/m:1`, 'hello', '--require-signature', key.pub, '--json');
    assert.ok(![0, 4, 12].includes(run.code), run.stderr);
    assert.equal(JSON.parse(await f.ok('--store', join(f.dir, 'p-run'), 'inspect', `${host}/sig/m:1`, '--json')).digest, digest);
    // the verified bundle was kept: the stored model verifies with no registry (a bare digest is local)
    assert.equal(JSON.parse(await f.ok('--store', join(f.dir, 'p-run'), 'verify-signature', digest, '--key', key.pub, '--json')).source, 'the store');
  }

  for (const [ref, pub, code, exit] of [
    [`${host}/sig/u:1`, key.pub, 'SIGNATURE_MISSING', 12],
    [`${host}/sig/m:1`, other.pub, 'SIGNATURE_WRONG_KEY', 4],
  ] as const) {
    const root = `p-${code}`;
    const r = await f.run('--store', join(f.dir, root), 'pull', ref, '--require-signature', pub, '--json', '-q');
    assert.equal(r.code, exit, r.stderr);
    assert.equal(jsonError(r).code, code);
    assert.deepEqual(await stored(f, root), { entries: 0, blobs: 0 }, `${code}: nothing stored`);
    if (!withRun || code !== 'SIGNATURE_MISSING') continue;
    const run = await f.run('--store', join(f.dir, `${root}-run`), 'run', ref, 'hello', '--require-signature', pub, '--json');
    assert.equal(run.code, exit, run.stderr);
    assert.deepEqual(await stored(f, `${root}-run`), { entries: 0, blobs: 0 }, `run ${code}: nothing stored`);
  }

  // A signature copied onto the unsigned model is refused, nothing stored.
  const bundle = res.body;
  await attachBundle(f, `${host}/sig/u:1`, bundle, 'copied.json');
  const copied = await f.run('--store', join(f.dir, 'p-copied'), 'pull', `${host}/sig/u:1`, '--require-signature', key.pub, '--json', '-q');
  assert.equal(copied.code, 4, copied.stderr);
  assert.equal(jsonError(copied).code, 'SIGNATURE_OTHER_MODEL');
  assert.deepEqual(await stored(f, 'p-copied'), { entries: 0, blobs: 0 });
}

test('mpk serve (referrers API): sign, verify-signature and pull --require-signature', async (t) => {
  const s = await startTestServer(t);
  const f = await signFixture(t);
  if (!f) return;
  await remoteFlow(f, s.host, true);
  const tags = (await request(`${s.url}/v2/sig/m/tags/list`)).json<{ tags: string[] }>();
  assert.deepEqual(tags.tags, ['1'], 'the registry answered the referrers API: no fallback tag');
});

test('docker-registry 2.8 (sha256-<hex> tag fallback): sign, verify-signature and pull --require-signature', async (t) => {
  const reg = await registry(t);
  if (!reg) return;
  const f = await signFixture(t);
  if (!f) return;
  await remoteFlow(f, reg.host, false);
  const tags = (await request(`${reg.url}/v2/sig/m/tags/list`)).json<{ tags: string[] }>();
  assert.equal(tags.tags.filter((x) => x.startsWith('sha256-')).length, 1, 'the signature is listed under the fallback tag');
});

test('an index: signatures are per variant; pull --variant --require-signature checks the variant it chooses', async (t) => {
  const s = await startTestServer(t);
  const f = await signFixture(t);
  if (!f) return;
  const key = opensslKey(f.dir, 'k');
  const digests: Record<string, string> = {};
  for (const ft of ['F16', 'Q8_0'] as const) {
    const file = join(f.dir, `tiny-${ft}.gguf`);
    await writeTinyLlama(file, { fileType: ft });
    digests[ft] = JSON.parse(await f.ok('build', '-t', `m/tiny:${ft.toLowerCase()}`, file, '--json')).digest;
  }
  await f.ok('index', 'create', 'm/tiny:all', 'm/tiny:f16', 'm/tiny:q8_0');
  await f.ok('push', 'm/tiny:all', `${s.host}/r/tiny:all`, '-q');

  const whole = await f.run('sign', `${s.host}/r/tiny:all`, '--key', key.priv, '--json');
  assert.equal(whole.code, 2, whole.stderr);
  assert.match(jsonError(whole).message, /an index of variants; signatures are per model/);
  await f.ok('sign', `${s.host}/r/tiny@${digests.Q8_0}`, '--key', key.priv);

  const q8 = await f.run('--store', join(f.dir, 'q8'), 'pull', `${s.host}/r/tiny:all`, '--variant', 'Q8_0', '--require-signature', key.pub, '--json', '-q');
  assert.equal(q8.code, 0, q8.stderr);
  assert.equal(JSON.parse(q8.stdout.trim().split('\n').pop()!).digest, digests.Q8_0);
  const f16 = await f.run('--store', join(f.dir, 'f16'), 'pull', `${s.host}/r/tiny:all`, '--variant', 'F16', '--require-signature', key.pub, '--json', '-q');
  assert.equal(f16.code, 12, f16.stderr);
  assert.deepEqual(await stored(f, 'f16'), { entries: 0, blobs: 0 });
});
