/**
 * Variant indexes end to end (issue 13): three tiny GGUF variants built, `mpk index create/add/rm`,
 * determinism, ls/inspect, push to `mpk serve`, pull by --variant / --platform / --memory, and
 * the refusals (nested or non-model variants, --variant on one model, deep or broken indexes).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { canonicalJsonBytes } from '../../oci/canonical-json.js';
import { digestBytes } from '../../oci/digest.js';
import { OCI_IMAGE_CONFIG, OCI_INDEX, OCI_MANIFEST } from '../../oci/media-types.js';
import { LocalStore } from '../../store/store.js';
import { mpk } from '../../test-support/cli.js';
import { request, startTestServer } from '../../test-support/serve.js';
import { writeTinyLlama } from '../../test-support/tiny-llama.js';
import { tempDir } from '../../test-support/tmp.js';

const json = (s: string) => JSON.parse(s) as any; // eslint-disable-line @typescript-eslint/no-explicit-any

async function setup(t: Parameters<typeof tempDir>[0]) {
  const dir = await tempDir(t, 'mpk-index-');
  const env = { MPK_HOME: join(dir, 'store'), DOCKER_CONFIG: join(dir, 'docker') };
  const digests: Record<string, string> = {};
  for (const ft of ['F32', 'F16', 'Q8_0'] as const) {
    const file = join(dir, `tiny-${ft}.gguf`);
    await writeTinyLlama(file, { fileType: ft });
    const b = await mpk(env, dir, 'build', '-t', `m/tiny:${ft.toLowerCase()}`, file);
    assert.equal(b.code, 0, b.stderr);
    digests[ft] = /Digest: (sha256:\w+)/.exec(b.stdout)![1]!;
  }
  return { dir, env, digests };
}

test('index create: one entry per variant with its annotations, deterministic; add and rm move the tag; ls and inspect show it', async (t) => {
  const { dir, env, digests } = await setup(t);
  const c = await mpk(env, dir, 'index', 'create', '--json', 'm/tiny:all', 'm/tiny:f32', 'm/tiny:f16', 'm/tiny:q8_0,platform=linux/arm64/v8');
  assert.equal(c.code, 0, c.stderr);
  const idx = json(c.stdout);
  assert.equal(idx.artifactType, 'application/vnd.cncf.model.manifest.v1+json');
  assert.deepEqual(idx.manifests.map((m: any) => m.digest), [digests.F32, digests.F16, digests.Q8_0], 'the order given');
  const q8 = idx.manifests[2];
  assert.equal(q8.mediaType, OCI_MANIFEST);
  assert.equal(q8.artifactType, 'application/vnd.cncf.model.manifest.v1+json');
  assert.deepEqual(q8.platform, { os: 'linux', architecture: 'arm64', variant: 'v8' });
  assert.equal(q8.annotations['org.cncf.model.quantization'], 'Q8_0');
  assert.equal(q8.annotations['org.cncf.model.format'], 'gguf');
  assert.equal(q8.annotations['org.cncf.model.param.size'], '165K');
  assert.match(q8.annotations['org.cncf.model.weight.bytes'], /^\d+$/);
  assert.equal(idx.manifests[0].annotations['org.cncf.model.quantization'], 'F32', 'unquantized: the precision as a type name');
  assert.equal(idx.manifests[1].annotations['org.cncf.model.quantization'], 'F16');
  assert.equal(idx.manifests[0].platform, undefined, 'a platform only where given');
  assert.ok(Number(idx.manifests[0].annotations['org.cncf.model.weight.bytes']) > Number(idx.manifests[1].annotations['org.cncf.model.weight.bytes']));

  // the stored bytes are canonical JSON of the index, and the same variants give the same digest
  const store = await LocalStore.open(env.MPK_HOME);
  t.after(() => store.close());
  const desc = await store.resolve('m/tiny:all');
  assert.equal(desc.mediaType, OCI_INDEX);
  assert.equal(desc.digest, idx.digest);
  const bytes = await store.blobs.read(desc, 1 << 20);
  assert.deepEqual(bytes, canonicalJsonBytes(JSON.parse(bytes.toString())));
  const again = json((await mpk(env, dir, 'index', 'create', '--json', 'm/tiny:again', 'm/tiny:f32', 'm/tiny:f16', 'm/tiny:q8_0,platform=linux/arm64/v8')).stdout);
  assert.equal(again.digest, idx.digest, 'deterministic');

  // create over an existing name is refused; rm then add back the last one gives the same digest
  const exists = await mpk(env, dir, 'index', 'create', 'm/tiny:all', 'm/tiny:f32');
  assert.notEqual(exists.code, 0);
  assert.match(exists.stderr, /already names an index.*mpk index add/);
  const rm = json((await mpk(env, dir, 'index', 'rm', '--json', 'm/tiny:all', 'Q8_0')).stdout);
  assert.deepEqual(rm.manifests.map((m: any) => m.digest), [digests.F32, digests.F16]);
  assert.equal((await store.resolve('m/tiny:all')).digest, rm.digest, 'the tag moved');
  const add = json((await mpk(env, dir, 'index', 'add', '--json', 'm/tiny:all', 'm/tiny:q8_0,platform=linux/arm64/v8')).stdout);
  assert.equal(add.digest, idx.digest);
  const rmByDigest = await mpk(env, dir, 'index', 'rm', 'm/tiny:again', digests.F16!.slice(7, 19), 'm/tiny:f32');
  assert.equal(rmByDigest.code, 0, rmByDigest.stderr);
  assert.match(rmByDigest.stdout, /^Updated index m\/tiny:again: 1 variant \(Q8_0\)\n/);
  assert.match((await mpk(env, dir, 'index', 'rm', 'm/tiny:again', 'Q8_0')).stderr, /would leave the index empty/);
  assert.match((await mpk(env, dir, 'index', 'rm', 'm/tiny:all', 'Q4_K_M')).stderr, /no variant matches Q4_K_M/);

  // ls and inspect
  const ls = await mpk(env, dir, 'ls');
  assert.match(ls.stdout, /m\/tiny:all +[0-9a-f]{12} +1\.2 MiB +gguf +165K +F32,F16,Q8_0\n/);
  const lsj = json((await mpk(env, dir, 'ls', '--json')).stdout).find((m: any) => m.reference === 'm/tiny:all');
  assert.deepEqual(lsj.variants.map((v: any) => v.quantization), ['F32', 'F16', 'Q8_0']);
  const ins = await mpk(env, dir, 'inspect', 'm/tiny:all');
  assert.match(ins.stdout, /Kind: +index\n/);
  assert.match(ins.stdout, /Variants \(3\):\nQUANTIZATION +FORMAT +PARAMS +WEIGHTS +PLATFORM +DIGEST +STORED\nF32 +gguf +165K +663\.2 KiB +- +sha256:[0-9a-f]{12} +yes\n/);
  assert.match(ins.stdout, /Q8_0 +gguf +165K +189\.9 KiB +linux\/arm64\/v8 /);
  const insj = json((await mpk(env, dir, 'inspect', '--json', 'm/tiny:all')).stdout);
  assert.deepEqual(insj.variants[2], { digest: digests.Q8_0, mediaType: OCI_MANIFEST, size: q8.size, artifactType: q8.artifactType, quantization: 'Q8_0', format: 'gguf', paramSize: '165K', weightBytes: Number(q8.annotations['org.cncf.model.weight.bytes']), platform: 'linux/arm64/v8', stored: true });
  assert.equal(insj.manifest.mediaType, OCI_INDEX);

  // nested: an index of indexes, 8 levels in all at most; deeper is refused and nothing stored
  const nested = await mpk(env, dir, 'index', 'create', '--json', 'm/tiny:nest', 'm/tiny:all');
  assert.equal(nested.code, 0, nested.stderr);
  assert.deepEqual(json(nested.stdout).manifests, [{ mediaType: OCI_INDEX, digest: idx.digest, size: desc.size, artifactType: idx.artifactType }]);
  let prev = 'm/tiny:nest';
  for (let level = 3; level <= 8; level++) {
    const r = await mpk(env, dir, 'index', 'create', `m/tiny:n${level}`, prev);
    assert.equal(r.code, 0, r.stderr);
    prev = `m/tiny:n${level}`;
  }
  const tooDeep = await mpk(env, dir, 'index', 'create', 'm/tiny:n9', prev);
  assert.equal(tooDeep.code, 4, tooDeep.stderr);
  assert.match(tooDeep.stderr, /m\/tiny:n8 \(as an entry of a new index\): indexes nested more than 8 deep\. Hint: nothing was stored/);
  // refusals: something that is not a model, a variant given twice
  const cfg = Buffer.from('{}');
  const cfgDesc = { mediaType: OCI_IMAGE_CONFIG, digest: digestBytes(cfg), size: cfg.length };
  const img = canonicalJsonBytes({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: cfgDesc, layers: [] });
  const imgDesc = { mediaType: OCI_MANIFEST, digest: digestBytes(img), size: img.length };
  await store.push(cfgDesc, cfg);
  await store.push(imgDesc, img);
  await store.tag(imgDesc, 'some/image:1');
  const notModel = await mpk(env, dir, 'index', 'create', 'm/tiny:bad', 'm/tiny:f32', 'some/image:1');
  assert.equal(notModel.code, 2);
  assert.match(notModel.stderr, /some\/image:1: is not a model manifest/);
  assert.match((await mpk(env, dir, 'index', 'create', 'm/tiny:twice', 'm/tiny:f32', 'm/tiny:f32')).stderr, /given twice/);
  assert.match((await mpk(env, dir, 'index', 'create', 'm/tiny:p', 'm/tiny:f32,platform=linux')).stderr, /is not platform=OS\/ARCH/);
  assert.match((await mpk(env, dir, 'index', 'add', 'm/tiny:f32', 'm/tiny:f16')).stderr, /m\/tiny:f32: is a model, not an index/);
  for (const ref of ['m/tiny:bad', 'm/tiny:n9', 'm/tiny:twice', 'm/tiny:p']) assert.ok(!ls.stdout.includes(ref) && !(await mpk(env, dir, 'ls', '-q')).stdout.includes(ref), `${ref} not stored`);
});

test('pull from an index on mpk serve: --variant, --variant with --platform, --memory choosing, and --variant on one model', async (t) => {
  const { dir, env, digests } = await setup(t);
  const s = await startTestServer(t);
  assert.equal((await mpk(env, dir, 'index', 'create', 'm/tiny:all', 'm/tiny:f32', 'm/tiny:f16', 'm/tiny:q8_0')).code, 0);
  assert.equal((await mpk(env, dir, 'index', 'create', 'm/tiny:plat', 'm/tiny:f16,platform=linux/arm64', 'm/tiny:q8_0,platform=linux/amd64')).code, 0);
  for (const [src, dst] of [['m/tiny:all', 'm/tiny:all'], ['m/tiny:plat', 'm/tiny:plat'], ['m/tiny:q8_0', 'm/one:q8']]) {
    const p = await mpk(env, dir, 'push', '-q', src!, `${s.host}/${dst}`);
    assert.equal(p.code, 0, p.stderr);
  }
  const pullEnv = (name: string) => ({ ...env, MPK_HOME: join(dir, name) });
  const stored = async (e: NodeJS.ProcessEnv, ref: string) => json((await mpk(e, dir, 'inspect', '--json', ref)).stdout).digest as string;

  // --variant
  const e1 = pullEnv('s1');
  const v = await mpk(e1, dir, 'pull', '-q', `${s.host}/m/tiny:all`, '--variant', 'Q8_0');
  assert.equal(v.code, 0, v.stderr);
  assert.equal(await stored(e1, `${s.host}/m/tiny:all`), digests.Q8_0);

  // --memory: the highest precision whose weights fit 80% (weights: F32 663 KiB, F16 341 KiB, Q8_0 190 KiB)
  for (const [mem, want, said] of [
    ['1MiB', 'F32', /^mpk: chose F32 \(663\.2 KiB of weights; 1\.0 MiB available\)\n$/],
    ['600KiB', 'F16', /^mpk: chose F16 \(340\.9 KiB of weights; 600\.0 KiB available\); F32 needs 828\.9 KiB \(663\.2 KiB of weights\)\n$/],
    ['300KiB', 'Q8_0', /^mpk: chose Q8_0 \(189\.9 KiB of weights; 300\.0 KiB available\); F32 needs .*, F16 needs 426\.1 KiB/],
  ] as const) {
    const e = pullEnv(`mem-${mem}`);
    const r = await mpk(e, dir, 'pull', '-q', `${s.host}/m/tiny:all`, '--memory', mem);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr.replace(/^mpk: created a new store at .*\n/, ''), said);
    assert.equal(await stored(e, `${s.host}/m/tiny:all`), digests[want], `--memory ${mem} → ${want}`);
  }
  const tooSmall = await mpk(pullEnv('small'), dir, 'pull', '--json', `${s.host}/m/tiny:all`, '--memory', '100KiB');
  assert.equal(tooSmall.code, 2);
  assert.match(tooSmall.stderr, /no variant fits 100\.0 KiB available: the smallest, Q8_0 needs 237\.4 KiB.*--memory SIZE/);
  assert.equal((await mpk(pullEnv('small'), dir, 'ls', '-q')).stdout, '', 'nothing stored');

  // --variant with --platform: both must match one entry
  const e2 = pullEnv('s2');
  const both = await mpk(e2, dir, 'pull', '-q', `${s.host}/m/tiny:plat`, '--variant', 'Q8_0', '--platform', 'linux/amd64');
  assert.equal(both.code, 0, both.stderr);
  assert.equal(await stored(e2, `${s.host}/m/tiny:plat`), digests.Q8_0);
  const mismatch = await mpk(pullEnv('s3'), dir, 'pull', `${s.host}/m/tiny:plat`, '--variant', 'F16', '--platform', 'linux/amd64');
  assert.equal(mismatch.code, 3);
  assert.match(mismatch.stderr, /no manifest in the index matches linux\/amd64 F16/);

  // --variant on one model: must describe it
  const e4 = pullEnv('s4');
  const bad = await mpk(e4, dir, 'pull', `${s.host}/m/one:q8`, '--variant', 'F16');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /m\/one:q8: is one model, not an index of variants, and is not F16/);
  assert.equal((await mpk(e4, dir, 'ls', '-q')).stdout, '');
  const ok = await mpk(e4, dir, 'pull', '-q', `${s.host}/m/one:q8`, '--variant', 'q8_0');
  assert.equal(ok.code, 0, ok.stderr);
});

test('bad indexes in a copy walk: nested deeper than 8, an entry that is no manifest: INVALID_MANIFEST, nothing stored', async (t) => {
  const { dir, env, digests } = await setup(t);
  const s = await startTestServer(t);
  assert.equal((await mpk(env, dir, 'push', '-q', 'm/tiny:q8_0', `${s.host}/m/deep:leaf`)).code, 0);
  const store = await LocalStore.open(env.MPK_HOME);
  t.after(() => store.close());
  const leaf = await store.resolve('m/tiny:q8_0');
  // a chain of indexes over the model: 8 deep is fine, 9 is refused
  const put = async (tag: string, child: { mediaType: string; digest: string; size: number }) => {
    const body = canonicalJsonBytes({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [child] });
    const r = await request(`${s.url}/v2/m/deep/manifests/${tag}`, { method: 'PUT', headers: { 'content-type': OCI_INDEX }, body });
    assert.equal(r.status, 201, r.text);
    return { mediaType: OCI_INDEX, digest: digestBytes(body), size: body.length };
  };
  let child = { mediaType: leaf.mediaType, digest: leaf.digest, size: leaf.size };
  for (let i = 1; i <= 9; i++) child = await put(`d${i}`, child);
  const e = { ...env, MPK_HOME: join(dir, 'copy') };
  const fine = await mpk(e, dir, 'copy', '-q', `${s.host}/m/deep:d8`, 'local/deep:d8');
  assert.equal(fine.code, 0, fine.stderr);
  // into a fresh store, and into the store that holds d8 already (an index the destination has is
  // skipped by the copy, but still counts towards the limit)
  for (const home of [join(dir, 'copy9'), e.MPK_HOME]) {
    const e9 = { ...env, MPK_HOME: home };
    const deep = await mpk(e9, dir, 'copy', '--json', `${s.host}/m/deep:d9`, 'local/deep:d9');
    assert.notEqual(deep.code, 0);
    const err = json(deep.stderr.trim().split('\n').pop()!);
    assert.equal(err.error?.code ?? err.code, 'INVALID_MANIFEST', deep.stderr);
    assert.match(deep.stderr, /indexes nested more than 8 deep/);
    assert.ok(!(await mpk(e9, dir, 'ls', '-q')).stdout.includes('d9'), 'd9 not stored');
  }
  // the same in a registry that holds d8 (same repository: nothing to copy but the root)
  const again = await mpk(env, dir, 'copy', '-q', `${s.host}/m/deep:d9`, `${s.host}/m/deep:again`);
  assert.equal(again.code, 4, again.stderr);
  assert.match(again.stderr, /indexes nested more than 8 deep/);
  assert.equal((await request(`${s.url}/v2/m/deep/manifests/again`, { headers: { accept: OCI_INDEX } })).status, 404, 'no tag written');

  // an index whose entry is a weight blob: refused by the walk (push) and by pull's selection
  const weight = json((await mpk(env, dir, 'inspect', '--json', 'm/tiny:q8_0')).stdout).files[0];
  const broken = canonicalJsonBytes({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: weight.mediaType, digest: weight.digest, size: weight.size }] });
  const bDesc = { mediaType: OCI_INDEX, digest: digestBytes(broken), size: broken.length };
  await store.push(bDesc, broken);
  await store.tag(bDesc, 'm/broken:1');
  const push = await mpk(env, dir, 'push', '--json', 'm/broken:1', `${s.host}/m/broken:1`);
  assert.equal(push.code !== 0, true);
  assert.match(push.stderr, /INVALID_MANIFEST/);
  assert.match(push.stderr, /is a application\/vnd\.cncf\.model\.weight\.v1\.raw, not a manifest or index/);
  assert.equal((await request(`${s.url}/v2/m/broken/manifests/1`, { headers: { accept: OCI_INDEX } })).status, 404, 'nothing stored in the registry');
  const ofBroken = await mpk(env, dir, 'index', 'create', 'm/of:broken', 'm/broken:1');
  assert.equal(ofBroken.code, 4, ofBroken.stderr);
  assert.match(ofBroken.stderr, /index entry sha256:\w+ is a application\/vnd\.cncf\.model\.weight\.v1\.raw, not a manifest or index/);
  assert.ok(!(await mpk(env, dir, 'ls', '-q')).stdout.includes('m/of:broken'), 'not stored');
  void digests;
});

test('nested indexes: platforms of quantizations pushed, then pulled by --platform and --variant, --memory inside a platform, and dry run', async (t) => {
  const { dir, env, digests } = await setup(t);
  const s = await startTestServer(t);
  const ok = async (e: NodeJS.ProcessEnv, ...argv: string[]) => {
    const r = await mpk(e, dir, ...argv);
    assert.equal(r.code, 0, `${argv.join(' ')}: ${r.stderr}`);
    return r;
  };
  await ok(env, 'index', 'create', 'm/tiny:arm', 'm/tiny:f16', 'm/tiny:q8_0');
  await ok(env, 'index', 'create', 'm/tiny:amd', 'm/tiny:f32', 'm/tiny:q8_0');
  await ok(env, 'index', 'create', 'm/tiny:plats', 'm/tiny:arm,platform=linux/arm64', 'm/tiny:amd,platform=linux/amd64');
  await ok(env, 'push', '-q', 'm/tiny:plats', `${s.host}/m/plats:1`);
  const ref = `${s.host}/m/plats:1`;
  const pulled = async (name: string, ...flags: string[]) => {
    const e = { ...env, MPK_HOME: join(dir, name) };
    const r = await ok(e, 'pull', '-q', ref, ...flags);
    return { digest: json((await ok(e, 'inspect', '--json', ref)).stdout).digest as string, stderr: r.stderr, e };
  };
  assert.equal((await pulled('p1', '--platform', 'linux/arm64', '--variant', 'Q8_0')).digest, digests.Q8_0);
  assert.equal((await pulled('p2', '--platform', 'linux/arm64', '--variant', 'f16')).digest, digests.F16);
  const mem = await pulled('p3', '--platform', 'linux/amd64', '--memory', '300KiB');
  assert.equal(mem.digest, digests.Q8_0);
  assert.match(mem.stderr, /chose Q8_0/);
  // --variant alone: the host's platform is taken first (entries for other platforms drop out)
  const plan = json((await ok({ ...env, MPK_HOME: join(dir, 'p4') }, 'pull', '--dry-run', '--json', ref, '--platform', 'linux/arm64', '--variant', 'F16')).stdout);
  assert.equal(plan.root.digest, digests.F16);
  const none = await mpk({ ...env, MPK_HOME: join(dir, 'p5') }, dir, 'pull', ref, '--platform', 'linux/arm64', '--variant', 'F32');
  assert.equal(none.code, 3, none.stderr);
  assert.match(none.stderr, /no manifest in the index matches F32/);
  // copied whole into a store, a variant two index levels down is named NAME@DIGEST
  await ok(mem.e, 'copy', '-q', ref, 'l/plats:1');
  assert.equal(json((await ok(mem.e, 'inspect', '--json', `l/plats@${digests.F32}`)).stdout).digest, digests.F32);
  assert.equal((await mpk(mem.e, dir, 'inspect', `l/other@${digests.F32}`)).code, 3, 'not under another name');
});
