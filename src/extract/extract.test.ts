import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, lstat, mkdir, readFile, readdir, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack as tarPack } from 'tar-stream';
import { extractModel } from './extract.js';
import { buildModel } from '../build/build-model.js';
import { packModel } from '../build/pack.js';
import { LocalStore } from '../store/store.js';
import { digestBytes } from '../oci/digest.js';
import type { Descriptor } from '../oci/descriptor.js';
import { layerMediaType, type LayerEncoding, type LayerKind, type ModelFamily } from '../oci/media-types.js';
import { hasErrorCode, type ErrorCode } from '../errors.js';
import { requirePeer } from '../test-support/peers.js';
import { makeModelDir, tempDir, writeTree } from '../test-support/tmp.js';

type T = Parameters<typeof tempDir>[0];

interface Layer {
  bytes: Buffer;
  path?: string;
  kind?: LayerKind;
  encoding?: LayerEncoding;
  mode?: number;
}

/** Stores a hand-made ModelPack artifact, with whatever paths the test wants. */
async function handMade(t: T, layers: Layer[], family: ModelFamily = 'cncf') {
  const store = await LocalStore.open(await tempDir(t));
  t.after(() => store.close());
  const descs: Descriptor[] = [];
  for (const l of layers) {
    const d: Descriptor = { mediaType: layerMediaType(l.kind ?? 'weight', l.encoding ?? 'raw', family), digest: digestBytes(l.bytes), size: l.bytes.length };
    if (l.path !== undefined) {
      d.annotations = {
        [`org.${family}.model.filepath`]: l.path,
        [`org.${family}.model.file.metadata+json`]: JSON.stringify({ name: l.path, mode: l.mode ?? 0o644, size: l.bytes.length, typeflag: 0 }),
      };
    }
    await store.push(d, l.bytes);
    descs.push(d);
  }
  const packed = await packModel(store, { layers: descs, mediaTypes: family, name: 'hand' });
  await store.tag(packed.manifest, 'hand:1');
  return store;
}

async function tarOf(entries: Array<{ name: string; body?: string; type?: 'file' | 'directory' | 'symlink' | 'link'; mode?: number; linkname?: string }>): Promise<Buffer> {
  const p = tarPack();
  for (const e of entries) {
    const header = { name: e.name, type: e.type ?? 'file', mode: e.mode ?? 0o644, mtime: new Date('2024-05-06T07:08:09Z'), ...(e.linkname ? { linkname: e.linkname } : {}) };
    if ((e.type ?? 'file') === 'file') p.entry(header, e.body ?? '');
    else p.entry(header);
  }
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

async function rejectsWith(p: Promise<unknown>, code: ErrorCode, re?: RegExp) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(hasErrorCode(e, code), `expected ${code}, got ${String(e)}`);
    if (re) assert.match((e as Error).message, re);
    return true;
  });
}

test('extract restores files byte for byte with their modes; re-extract leaves identical files alone', async (t) => {
  const src = await tempDir(t);
  const files = await makeModelDir(src);
  await chmod(join(src, 'modeling.py'), 0o755);
  const store = await LocalStore.open(await tempDir(t));
  t.after(() => store.close());
  await buildModel(store, { contextDir: src, reference: 'm:1' });
  const out = join(await tempDir(t), 'new', 'dir');
  const r = await extractModel(store, 'm:1', out);
  assert.equal(r.files.length, Object.keys(files).length);
  for (const [p, body] of Object.entries(files)) assert.deepEqual(await readFile(join(out, p)), Buffer.from(body), p);
  assert.equal((await stat(join(out, 'modeling.py'))).mode & 0o777, 0o755);
  assert.equal((await stat(join(out, 'README.md'))).mode & 0o777, 0o644);
  assert.ok(Date.now() - (await stat(join(out, 'README.md'))).mtimeMs < 600_000, 'normalised metadata: mtime is now, not 1970');
  const again = await extractModel(store, 'm:1', out);
  assert.ok(again.files.every((f) => f.unchanged));
  // A changed file is not overwritten unless asked.
  await writeFile(join(out, 'README.md'), 'edited');
  await rejectsWith(extractModel(store, 'm:1', out), 'ALREADY_EXISTS', /README\.md: exists and differs/);
  assert.equal(await readFile(join(out, 'README.md'), 'utf8'), 'edited', 'nothing replaced');
  await extractModel(store, 'm:1', out, { overwrite: true });
  assert.deepEqual(await readFile(join(out, 'README.md')), Buffer.from(files['README.md']!));
  // Selections.
  const sel = await tempDir(t);
  const s = await extractModel(store, 'm:1', sel, { types: ['config', 'doc'], include: ['*.json', 'README.md'] });
  assert.deepEqual(s.files.map((f) => f.path).sort(), ['README.md', 'config.json', 'tokenizer.json']);
  const data = await extractModel(store, 'm:1', await tempDir(t), { include: ['data'] });
  assert.deepEqual(data.files.map((f) => f.path), ['data/train.jsonl'], 'a directory name selects what is under it');
  await rejectsWith(extractModel(store, 'm:1', await tempDir(t), { types: ['dataset'] }), 'NOT_FOUND', /no files match/);
});

test('--link hard-links weights: no second copy, read-only, identical bytes', async (t) => {
  const src = await tempDir(t);
  await makeModelDir(src);
  const store = await LocalStore.open(await tempDir(t));
  t.after(() => store.close());
  const b = await buildModel(store, { contextDir: src, reference: 'm:1' });
  const out = await tempDir(t);
  const r = await extractModel(store, 'm:1', out, { link: true });
  const w = r.files.find((f) => f.kind === 'weight')!;
  assert.ok(w.linked);
  assert.ok(r.files.filter((f) => f.kind !== 'weight').every((f) => !f.linked), 'only weights are linked');
  const st = await stat(join(out, 'model.safetensors'));
  assert.equal(st.ino, (await stat(store.blobs.path(w.digest))).ino, 'same inode as the blob');
  assert.equal(st.mode & 0o222, 0, 'read-only, so the store cannot be changed through it');
  assert.deepEqual(await readFile(join(out, 'model.safetensors')), await readFile(join(src, 'model.safetensors')));
  assert.ok(b.manifest.digest);
  const again = await extractModel(store, 'm:1', out, { link: true });
  assert.ok(again.files.every((f) => f.unchanged));
});

test('malicious filepath annotations are refused and nothing is written', async (t) => {
  const bad = ['../evil.bin', '/tmp/evil.bin', 'a/../../evil.bin', 'a\\..\\evil.bin', 'C:/evil.bin', 'ok/\0evil', '.', ''];
  for (const path of bad) {
    const store = await handMade(t, [{ bytes: Buffer.from('fine'), path: 'fine.bin' }, { bytes: Buffer.from('evil'), path }]);
    const root = await tempDir(t);
    const out = join(root, 'out');
    await rejectsWith(extractModel(store, 'hand:1', out), 'UNSAFE_PATH', /unsafe path/);
    assert.deepEqual(await readdir(root), [], `nothing written for ${JSON.stringify(path)}`);
  }
});

test('symbolic links already in the target are never written through', async (t) => {
  const outside = await tempDir(t);
  const out = await tempDir(t);
  await symlink(outside, join(out, 'sub'));
  await symlink(join(outside, 'victim'), join(out, 'w.bin'));
  await writeFile(join(outside, 'victim'), 'precious');
  const viaDir = await handMade(t, [{ bytes: Buffer.from('x'), path: 'sub/x.bin' }]);
  await rejectsWith(extractModel(viaDir, 'hand:1', out), 'UNSAFE_PATH', /is a symbolic link; refusing to write through it/);
  assert.deepEqual(await readdir(outside), ['victim']);
  const viaFile = await handMade(t, [{ bytes: Buffer.from('new'), path: 'w.bin' }]);
  await rejectsWith(extractModel(viaFile, 'hand:1', out), 'ALREADY_EXISTS');
  await extractModel(viaFile, 'hand:1', out, { overwrite: true });
  assert.equal(await readFile(join(outside, 'victim'), 'utf8'), 'precious', 'the link was replaced, its target untouched');
  assert.ok((await lstat(join(out, 'w.bin'))).isFile());
  assert.equal(await readlink(join(out, 'sub')), outside);
});

test('malformed artifacts: a path twice, a file that is also a directory', async (t) => {
  const twice = await handMade(t, [{ bytes: Buffer.from('a'), path: 'w.bin' }, { bytes: Buffer.from('b'), path: './w.bin' }]);
  await rejectsWith(extractModel(twice, 'hand:1', await tempDir(t)), 'INVALID_MANIFEST', /appears twice/);
  const both = await handMade(t, [{ bytes: Buffer.from('a'), path: 'a' }, { bytes: Buffer.from('b'), path: 'a/b.bin' }]);
  const root = await tempDir(t);
  await rejectsWith(extractModel(both, 'hand:1', join(root, 'out'), { concurrency: 1 }), 'INVALID_MANIFEST', /both as a file and as a directory/);
  assert.deepEqual(await readdir(root), []);
});

test('a corrupt blob fails the whole extract with exit-4 CORRUPT and leaves nothing', async (t) => {
  const store = await handMade(t, [
    { bytes: Buffer.from('good file'), path: 'a/good.txt', kind: 'doc' },
    { bytes: Buffer.from('weights!'), path: 'b/w.bin' },
  ]);
  const bad = digestBytes(Buffer.from('weights!'));
  await chmod(store.blobs.path(bad), 0o644);
  await writeFile(store.blobs.path(bad), 'weights?'); // same size, other bytes
  const root = await tempDir(t);
  await rejectsWith(extractModel(store, 'hand:1', join(root, 'out')), 'CORRUPT', new RegExp(bad));
  assert.deepEqual(await readdir(root), [], 'no file and no directory left behind');
  await rejectsWith(extractModel(store, 'hand:1', join(root, 'out'), { link: true }), 'CORRUPT');
  assert.deepEqual(await readdir(root), []);
});

test('a stored blob with bytes past its size fails extract as CORRUPT (reads stop at the end of file, not at the size)', async (t) => {
  const store = await handMade(t, [{ bytes: Buffer.from('weights!'), path: 'w.bin' }]);
  const blob = store.blobs.path(digestBytes(Buffer.from('weights!')));
  await chmod(blob, 0o644);
  await writeFile(blob, 'weights!+more');
  const root = await tempDir(t);
  await rejectsWith(extractModel(store, 'hand:1', join(root, 'out')), 'CORRUPT');
  assert.deepEqual(await readdir(root), []);
});

test('tar, tar+gzip and tar+zstd layers (cncf and legacy cnai) are read; links inside are skipped', async (t) => {
  const tar = await tarOf([
    { name: 'ckpt/', type: 'directory', mode: 0o755 },
    { name: 'ckpt/shard-1.bin', body: 'one', mode: 0o644 },
    { name: './ckpt/run.sh', body: '#!/bin/sh\n', mode: 0o755 },
    { name: 'ckpt/passwd', type: 'symlink', linkname: '/etc/passwd' },
  ]);
  const variants: Array<[LayerEncoding, Buffer]> = [['tar', tar], ['tar+gzip', gzipSync(tar)]];
  if (requirePeer(t, 'zstd')) {
    const z = spawnSync('zstd', ['-q', '-c'], { input: tar });
    assert.equal(z.status, 0);
    variants.push(['tar+zstd', z.stdout]);
  }
  for (const family of ['cncf', 'cnai'] as const) {
    for (const [encoding, bytes] of variants) {
      const store = await handMade(t, [{ bytes, path: 'ckpt', encoding }, { bytes: Buffer.from('cfg'), path: 'config.json', kind: 'config' }], family);
      const out = await tempDir(t);
      const r = await extractModel(store, 'hand:1', out);
      assert.deepEqual(r.files.map((f) => f.path).sort(), ['ckpt/run.sh', 'ckpt/shard-1.bin', 'config.json'], `${family} ${encoding}`);
      assert.equal(await readFile(join(out, 'ckpt/shard-1.bin'), 'utf8'), 'one');
      assert.equal((await stat(join(out, 'ckpt/run.sh'))).mode & 0o777, 0o755);
      assert.equal((await stat(join(out, 'ckpt/run.sh'))).mtime.toISOString(), '2024-05-06T07:08:09.000Z');
      assert.deepEqual((await readdir(join(out, 'ckpt'))).sort(), ['run.sh', 'shard-1.bin'], 'the symlink entry is not created');
      assert.match(r.warnings.join('\n'), /skipped ckpt\/passwd \(symlink entries are not extracted\)/);
    }
  }
});

test('tar layers: entries that climb out are refused, a corrupt tar leaves nothing', async (t) => {
  for (const name of ['../../evil.txt', '/abs/evil.txt', 'ok/../../evil.txt']) {
    const store = await handMade(t, [{ bytes: await tarOf([{ name: 'fine.txt', body: 'f' }, { name, body: 'evil' }]), path: 'x', encoding: 'tar' }]);
    const root = await tempDir(t);
    await rejectsWith(extractModel(store, 'hand:1', join(root, 'out')), 'UNSAFE_PATH');
    assert.deepEqual(await readdir(root), [], name);
  }
  const good = await tarOf([{ name: 'data/a.txt', body: 'a'.repeat(2000) }]);
  const store = await handMade(t, [{ bytes: good, path: 'data', encoding: 'tar', kind: 'dataset' }]);
  const d = digestBytes(good);
  const flipped = Buffer.from(good);
  flipped[600] = flipped[600]! ^ 1; // inside the file's content: tar still parses, the digest does not match
  await chmod(store.blobs.path(d), 0o644);
  await writeFile(store.blobs.path(d), flipped);
  const root = await tempDir(t);
  await rejectsWith(extractModel(store, 'hand:1', join(root, 'out')), 'CORRUPT');
  assert.deepEqual(await readdir(root), []);
});

test('container images are refused; ORAS-style artifacts extract by title', async (t) => {
  const store = await LocalStore.open(await tempDir(t));
  t.after(() => store.close());
  const cfg = Buffer.from('{}');
  const layer = Buffer.from('hello');
  const ld: Descriptor = { mediaType: 'text/plain', digest: digestBytes(layer), size: layer.length, annotations: { 'org.opencontainers.image.title': 'hello.txt' } };
  const cd: Descriptor = { mediaType: 'application/vnd.oci.empty.v1+json', digest: digestBytes(cfg), size: 2 };
  await store.push(ld, layer);
  await store.push(cd, cfg);
  const m = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: 'text/plain', config: cd, layers: [ld] }));
  const md: Descriptor = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: digestBytes(m), size: m.length };
  await store.push(md, m);
  await store.tag(md, 'oras:1');
  const out = await tempDir(t);
  await extractModel(store, 'oras:1', out);
  assert.equal(await readFile(join(out, 'hello.txt'), 'utf8'), 'hello');
  const img = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { ...cd, mediaType: 'application/vnd.oci.image.config.v1+json' }, layers: [] }));
  const imd: Descriptor = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: digestBytes(img), size: img.length };
  await store.push(imd, img);
  await store.tag(imd, 'image:1');
  await mkdir(join(out, 'img'));
  await rejectsWith(extractModel(store, 'image:1', join(out, 'img')), 'UNSUPPORTED', /container image/);
  await writeTree(out, {});
});

test('tar layers respect existing files: identical ones kept, edited ones refused unless --overwrite', async (t) => {
  const tar = await tarOf([{ name: 'src/a.py', body: 'NEW' }, { name: 'src/b.py', body: 'same' }]);
  const store = await handMade(t, [{ bytes: tar, path: 'src', encoding: 'tar', kind: 'code' }]);
  const out = await tempDir(t);
  await writeTree(out, { 'src/a.py': 'MY EDITS', 'src/b.py': 'same' });
  await rejectsWith(extractModel(store, 'hand:1', out), 'ALREADY_EXISTS', /src\/a\.py: exists and differs/);
  assert.equal(await readFile(join(out, 'src/a.py'), 'utf8'), 'MY EDITS');
  assert.deepEqual((await readdir(join(out, 'src'))).sort(), ['a.py', 'b.py'], 'no temp file left');
  const r = await extractModel(store, 'hand:1', out, { overwrite: true });
  assert.equal(await readFile(join(out, 'src/a.py'), 'utf8'), 'NEW');
  assert.deepEqual(r.files.map((f) => [f.path, f.unchanged]), [['src/a.py', false], ['src/b.py', true]]);
  const blocked = await tempDir(t);
  await mkdir(join(blocked, 'src', 'b.py'), { recursive: true });
  await rejectsWith(extractModel(store, 'hand:1', blocked), 'ALREADY_EXISTS', /is a directory/);
  assert.deepEqual(await readdir(join(blocked, 'src')), ['b.py'], 'a.py was not written either');
});

test('a raw layer and a tar entry claiming one path make the artifact invalid', async (t) => {
  const tar = await tarOf([{ name: 'w.bin', body: 'from tar' }]);
  const store = await handMade(t, [{ bytes: Buffer.from('raw'), path: 'w.bin' }, { bytes: tar, path: 'dir', encoding: 'tar' }]);
  const root = await tempDir(t);
  await rejectsWith(extractModel(store, 'hand:1', join(root, 'out')), 'INVALID_MANIFEST', /two layers hold this file/);
  assert.deepEqual(await readdir(root), []);
});
