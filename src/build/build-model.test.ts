import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, cp, readFile, symlink, utimes, writeFile, mkdir, appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildModel } from './build-model.js';
import { LocalStore } from '../store/store.js';
import { parseModelfile } from '../modelfile/parse.js';
import { hasErrorCode } from '../errors.js';
import { makeModelDir, tempDir, writeTree } from '../test-support/tmp.js';
import { assertValid, validators } from '../test-support/schemas.js';

async function build(t: Parameters<typeof tempDir>[0], dir: string, extra: Partial<Parameters<typeof buildModel>[1]> = {}, storeRoot?: string) {
  const store = await LocalStore.open(storeRoot ?? (await tempDir(t)));
  try {
    const r = await buildModel(store, { contextDir: dir, reference: 'models/m:v1', ...extra });
    const manifest = JSON.parse((await store.blobs.read(r.manifest, 1 << 22)).toString());
    const config = JSON.parse((await store.blobs.read(r.config, 1 << 20)).toString());
    return { r, manifest, config, store };
  } finally {
    store.close();
  }
}

test('build writes a ModelPack artifact that validates against the OCI and ModelPack schemas', async (t) => {
  const dir = await tempDir(t);
  await makeModelDir(dir);
  const { manifest, config, r } = await build(t, dir);
  assertValid(validators().manifest, manifest, 'manifest');
  assertValid(validators().configV007, config, 'config (v0.0.7)');
  assertValid(validators().configMain, config, 'config (main)');
  assert.equal(manifest.artifactType, 'application/vnd.cncf.model.manifest.v1+json');
  assert.equal(manifest.config.mediaType, 'application/vnd.cncf.model.config.v1+json');
  assert.deepEqual(
    manifest.layers.map((l: { mediaType: string; annotations: Record<string, string> }) => [l.mediaType.replace('application/vnd.cncf.model.', ''), l.annotations['org.cncf.model.filepath']]),
    [
      ['weight.config.v1.raw', 'config.json'], // modctl's table makes *.jsonl config too
      ['weight.config.v1.raw', 'data/train.jsonl'],
      ['weight.config.v1.raw', 'tokenizer.json'],
      ['weight.v1.raw', 'model.safetensors'],
      ['code.v1.raw', 'modeling.py'],
      ['doc.v1.raw', 'README.md'],
    ],
  );
  for (const l of manifest.layers) {
    assert.equal(l.annotations['org.opencontainers.image.title'], l.annotations['org.cncf.model.filepath']);
    const md = JSON.parse(l.annotations['org.cncf.model.file.metadata+json']);
    assert.equal(md.size, l.size);
    assert.equal(md.mtime, '1970-01-01T00:00:00Z');
  }
  assert.deepEqual(config.modelfs, { type: 'layers', diffIds: manifest.layers.map((l: { digest: string }) => l.digest) });
  assert.equal(config.descriptor.family, 'llama');
  assert.equal(config.descriptor.name, 'm');
  assert.equal(config.config.precision, 'bfloat16');
  assert.equal(config.config.architecture, 'transformer');
  assert.equal(config.config.format, 'safetensors', 'inferred from the weight files');
  assert.equal(config.descriptor.createdAt, undefined);
  assert.equal(r.files, manifest.layers.length);
});

test('determinism: same content under other mtimes, directories, modes and stores gives the same digest', async (t) => {
  const a = join(await tempDir(t), 'first-place');
  await makeModelDir(a);
  const b = join(await tempDir(t), 'elsewhere', 'other-name');
  await mkdir(join(b, '..'), { recursive: true });
  await cp(a, b, { recursive: true });
  for (const f of ['model.safetensors', 'config.json', 'README.md', 'data/train.jsonl']) {
    await utimes(join(b, f), new Date('2001-02-03'), new Date('2001-02-03'));
    await chmod(join(b, f), 0o600); // as under umask 077
  }
  await chmod(join(b, 'tokenizer.json'), 0o664); // as under umask 002
  const one = await build(t, a);
  const two = await build(t, b);
  assert.equal(one.r.manifest.digest, two.r.manifest.digest);
  // A Modelfile that lists the same files in another order gives the same artifact too.
  const mf = parseModelfile('NAME m\nFAMILY llama\nARCH transformer\nFORMAT safetensors\nPRECISION bfloat16\nDOC README.md\nCODE modeling.py\nMODEL *.safetensors\nCONFIG **/*.json*\n');
  const three = await build(t, b, { modelfile: mf });
  assert.equal(three.r.manifest.digest, one.r.manifest.digest);
  // ...but a changed byte does not.
  await appendFile(join(b, 'README.md'), 'x');
  assert.notEqual((await build(t, b)).r.manifest.digest, one.r.manifest.digest);
});

test('an executable bit survives normalisation; --keep-file-metadata keeps real values', async (t) => {
  const dir = await tempDir(t);
  await makeModelDir(dir);
  await chmod(join(dir, 'modeling.py'), 0o750);
  const { manifest } = await build(t, dir);
  const md = (p: string, m = manifest) => JSON.parse(m.layers.find((l: { annotations: Record<string, string> }) => l.annotations['org.cncf.model.filepath'] === p).annotations['org.cncf.model.file.metadata+json']);
  assert.equal(md('modeling.py').mode, 0o755);
  assert.equal(md('README.md').mode, 0o644);
  await utimes(join(dir, 'README.md'), new Date('2020-01-01T00:00:00Z'), new Date('2020-01-01T00:00:00Z'));
  const kept = await build(t, dir, { keepFileMetadata: true });
  assert.equal(md('modeling.py', kept.manifest).mode, 0o750);
  assert.equal(md('README.md', kept.manifest).mtime, '2020-01-01T00:00:00.000Z');
});

test('rebuilding an unchanged directory reads no file; a changed file is read again', async (t) => {
  const dir = await tempDir(t);
  await makeModelDir(dir);
  const storeRoot = await tempDir(t);
  const first = await build(t, dir, {}, storeRoot);
  assert.equal(first.r.filesRead, 6);
  const second = await build(t, dir, {}, storeRoot);
  assert.equal(second.r.filesRead, 0);
  assert.equal(second.r.manifest.digest, first.r.manifest.digest);
  await writeFile(join(dir, 'README.md'), '# changed\n');
  const third = await build(t, dir, {}, storeRoot);
  assert.equal(third.r.filesRead, 1);
  assert.equal((await build(t, dir, { noCache: true }, storeRoot)).r.filesRead, 6);
});

test('--legacy-cnai writes vnd.cnai types and keys; created time comes from the option', async (t) => {
  const dir = await tempDir(t);
  await makeModelDir(dir);
  const { manifest, config } = await build(t, dir, { family: 'cnai', createdAt: '2026-01-02T03:04:05Z' });
  assert.equal(manifest.artifactType, 'application/vnd.cnai.model.manifest.v1+json');
  assert.equal(manifest.config.mediaType, 'application/vnd.cnai.model.config.v1+json');
  assert.ok(manifest.layers.every((l: { mediaType: string; annotations: Record<string, string> }) => l.mediaType.startsWith('application/vnd.cnai.model.') && l.annotations['org.cnai.model.filepath']));
  assert.equal(config.descriptor.createdAt, '2026-01-02T03:04:05Z');
  assert.equal(manifest.annotations['org.opencontainers.image.created'], '2026-01-02T03:04:05Z');
  assertValid(validators().configV007, config, 'config (v0.0.7)');
  assertValid(validators().configMain, config, 'config (main)');
});

test('DATASET files are packaged as dataset layers', async (t) => {
  const dir = await tempDir(t);
  await writeTree(dir, { 'w.gguf': 'GGUF', 'data/a.parquet': 'P1', 'data/sub/b.csv': 'c' });
  const mf = parseModelfile('MODEL w.gguf\nDATASET data/**\n');
  const { manifest } = await build(t, dir, { modelfile: mf });
  assert.deepEqual(
    manifest.layers.map((l: { mediaType: string }) => l.mediaType),
    ['application/vnd.cncf.model.weight.v1.raw', 'application/vnd.cncf.model.dataset.v1.raw', 'application/vnd.cncf.model.dataset.v1.raw'],
  );
});

test('symlinks inside the directory are followed; ones that escape it are refused', async (t) => {
  const dir = await tempDir(t);
  const outside = await tempDir(t);
  await writeTree(dir, { 'real/model.safetensors': 'weights' });
  await writeTree(outside, { 'secret.txt': 'secret' });
  await symlink('real/model.safetensors', join(dir, 'link.safetensors'));
  const { manifest } = await build(t, dir, { modelfile: parseModelfile('MODEL link.safetensors\n') });
  assert.equal(manifest.layers[0].size, 7);
  await symlink(join(outside, 'secret.txt'), join(dir, 'escape.md'));
  await assert.rejects(build(t, dir, { modelfile: parseModelfile('MODEL link.safetensors\nDOC escape.md\n') }), (e: unknown) => hasErrorCode(e, 'UNSAFE_PATH'));
});

test('an empty build, a missing file and a dangling symlink are refused clearly', async (t) => {
  const dir = await tempDir(t);
  await assert.rejects(build(t, dir), (e: unknown) => hasErrorCode(e, 'EMPTY_BUILD'));
  await writeTree(dir, { 'a.gguf': 'x' });
  await assert.rejects(build(t, dir, { modelfile: parseModelfile('MODEL a.gguf\nMODEL missing.gguf\n', 'MF') }), (e: unknown) => hasErrorCode(e, 'MODELFILE_SYNTAX') && /MF:2:7/.test((e as Error).message));
  await symlink(join(dir, 'gone'), join(dir, 'dangling.gguf'));
  await assert.rejects(build(t, dir, { modelfile: parseModelfile('MODEL a.gguf\nMODEL dangling.gguf\n') }), (e: unknown) => hasErrorCode(e, 'NOT_FOUND') || hasErrorCode(e, 'MODELFILE_SYNTAX') || hasErrorCode(e, 'IO'));
  await assert.rejects(build(t, dir, { reference: 'Bad Ref' }), (e: unknown) => hasErrorCode(e, 'INVALID_REFERENCE'));
});

test('past 4 MiB of manifest, small files are grouped into deterministic tar layers; extract restores them', async (t) => {
  const dir = await tempDir(t);
  const files: Record<string, string> = { 'model.safetensors': 'w'.repeat(1000), 'top-level.json': '{}' };
  for (let i = 0; i < 9000; i++) files[`shards/a-rather-long-directory-name/and-a-long-file-name-${String(i).padStart(6, '0')}.parquet`] = `row ${i}`;
  for (let i = 0; i < 50; i++) files[`shards/few/f${i}.parquet`] = `few ${i}`;
  await writeTree(dir, files);
  const warnings: string[] = [];
  const mf = parseModelfile('MODEL model.safetensors\nCONFIG top-level.json\nDATASET shards/**\n');
  const one = await build(t, dir, { modelfile: mf, onWarning: (w) => warnings.push(w) });
  assert.match(warnings.join('\n'), /9000 small files in 1 directories packed as tar layers/);
  const layers = one.manifest.layers as Array<{ mediaType: string; size: number; annotations: Record<string, string> }>;
  assert.deepEqual(
    layers.map((l) => [l.mediaType.split('.').slice(-3).join('.'), l.annotations['org.cncf.model.filepath']]).slice(0, 4),
    [['config.v1.raw', 'top-level.json'], ['weight.v1.raw', 'model.safetensors'], ['dataset.v1.tar', 'shards/a-rather-long-directory-name'], ['dataset.v1.raw', 'shards/few/f0.parquet']],
    'only the directory that saves most is grouped; the rest stay one layer per file',
  );
  assert.equal(layers.length, 3 + 50);
  assertValid(validators().manifest, one.manifest, 'manifest');
  // Deterministic: another copy under other mtimes gives the same digest.
  const copy = join(await tempDir(t), 'copy');
  await cp(dir, copy, { recursive: true });
  await utimes(join(copy, 'shards/a-rather-long-directory-name/and-a-long-file-name-000007.parquet'), new Date('2002-01-01'), new Date('2002-01-01'));
  assert.equal((await build(t, copy, { modelfile: mf })).r.manifest.digest, one.r.manifest.digest);
  // extract restores every file from the tar layer.
  const { extractModel } = await import('../extract/extract.js');
  const store = await LocalStore.open(await tempDir(t));
  t.after(() => store.close());
  await buildModel(store, { contextDir: dir, reference: 'big:1', modelfile: mf });
  const out = await tempDir(t);
  const r = await extractModel(store, 'big:1', out);
  assert.equal(r.files.length, 2 + 9000 + 50);
  assert.equal(await readFile(join(out, 'shards/a-rather-long-directory-name/and-a-long-file-name-001234.parquet'), 'utf8'), 'row 1234');
});

test('a manifest that would pass 4 MiB even grouped is refused before any file is read', async (t) => {
  const dir = await tempDir(t);
  const files: Record<string, string> = {};
  for (let i = 0; i < 9000; i++) files[`and-a-rather-long-file-name-at-the-top-of-the-model-${String(i).padStart(6, '0')}.parquet`] = '';
  await writeTree(dir, files);
  const store = await LocalStore.open(await tempDir(t));
  t.after(() => store.close());
  await assert.rejects(buildModel(store, { contextDir: dir, reference: 'big:1', modelfile: parseModelfile('DATASET *.parquet\n') }), (e: unknown) => hasErrorCode(e, 'SIZE_EXCEEDS_LIMIT') && /4 MiB/.test((e as Error).message));
  const { readdir } = await import('node:fs/promises');
  assert.deepEqual(await readdir(join(store.root, 'blobs', 'sha256')).catch(() => []), []);
});

test('--group-small-files packs each directory of small files into one tar layer; weights stay raw', async (t) => {
  const dir = await tempDir(t);
  await makeModelDir(dir);
  await writeTree(dir, { 'data/b.jsonl': '{"text":"b"}\n', 'data/sub/c.jsonl': 'c\n', 'data/sub/d.jsonl': 'd\n' });
  const mf = parseModelfile('MODEL model.safetensors\nCONFIG config.json\nDATASET data/**\n');
  const { manifest, store } = await build(t, dir, { modelfile: mf, groupSmallFiles: true });
  const layers = manifest.layers as Array<{ mediaType: string; annotations: Record<string, string> }>;
  assert.deepEqual(
    layers.map((l) => [l.mediaType.replace('application/vnd.cncf.model.', ''), l.annotations['org.cncf.model.filepath']]),
    [['weight.config.v1.raw', 'config.json'], ['weight.v1.raw', 'model.safetensors'], ['dataset.v1.tar', 'data'], ['dataset.v1.tar', 'data/sub']],
  );
  assert.equal(JSON.parse(layers[2]!.annotations['org.cncf.model.file.metadata+json']!).typeflag, 53);
  const { extractModel } = await import('../extract/extract.js');
  const again = await LocalStore.open(store.root);
  t.after(() => again.close());
  const out = await tempDir(t);
  const r = await extractModel(again, 'models/m:v1', out);
  assert.deepEqual(r.files.map((f) => f.path).sort(), ['config.json', 'data/b.jsonl', 'data/sub/c.jsonl', 'data/sub/d.jsonl', 'data/train.jsonl', 'model.safetensors']);
  assert.equal(await readFile(join(out, 'data/sub/d.jsonl'), 'utf8'), 'd\n');
});

test('--group-small-files says which small files keep a layer each and why (top level, alone in a folder, weights)', async (t) => {
  const dir = await tempDir(t);
  await writeTree(dir, { 'model.bin': Buffer.alloc(1000, 1), 'README.md': '# m\n', 'LICENSE': 'MIT\n', 'docs/only.md': 'alone\n', 'data/a.txt': 'a\n', 'data/b.txt': 'b\n' });
  const mf = parseModelfile('MODEL model.bin\nDOC README.md\nDOC LICENSE\nDOC docs/only.md\nDATASET data/*\n');
  const warnings: string[] = [];
  const { manifest } = await build(t, dir, { modelfile: mf, groupSmallFiles: true, onWarning: (w) => warnings.push(w) });
  assert.deepEqual(
    manifest.layers.map((l: { mediaType: string; annotations: Record<string, string> }) => l.annotations['org.cncf.model.filepath']),
    ['model.bin', 'LICENSE', 'README.md', 'docs/only.md', 'data'],
  );
  assert.deepEqual(warnings, [
    '--group-small-files: 4 small files keep a layer each: LICENSE, README.md at the top of the model (a tar layer is named by its folder, and the top has none: move them into a folder to group them); docs/only.md alone in its folder (the only small file of its kind there: a tar of one file saves nothing); model.bin (weights always keep a layer of their own)',
  ]);
  const quiet: string[] = [];
  await build(t, dir, { modelfile: mf, onWarning: (w) => quiet.push(w) });
  assert.deepEqual(quiet, [], 'nothing said without the flag');
});
