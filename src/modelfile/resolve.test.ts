import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseModelfile } from './parse.js';
import { resolvePatterns } from './resolve.js';
import { hasErrorCode } from '../errors.js';
import { tempDir, writeTree } from '../test-support/tmp.js';

const files = async (text: string, dir: string) => (await resolvePatterns(parseModelfile(text, 'MF'), dir)).map((f) => `${f.kind}:${f.path}`);

test('exact paths, directories and globs with ** resolve to files ordered by kind then path', async (t) => {
  const dir = await tempDir(t);
  await writeTree(dir, {
    'a.safetensors': 'a', 'b.safetensors': 'b', 'cfg/x.json': '{}', 'cfg/deep/y.json': '{}', 'data/p1/s.jsonl': 'd',
    'data/p2/t.csv': 'd', 'src/m.py': 'p', '.hidden/z.json': '{}', 'w[1].bin': 'odd',
  });
  assert.deepEqual(await files('DATASET data\nCODE ./src/m.py\nMODEL *.safetensors\nCONFIG **/*.json\nMODEL w[1].bin\n', dir), [
    'config:cfg/deep/y.json', 'config:cfg/x.json', 'weight:a.safetensors', 'weight:b.safetensors', 'weight:w[1].bin',
    'code:src/m.py', 'dataset:data/p1/s.jsonl', 'dataset:data/p2/t.csv',
  ]);
  assert.deepEqual(await files('CONFIG .hidden/*.json\nMODEL cfg/*\n', dir), ['config:.hidden/z.json', 'weight:cfg/x.json'], 'hidden only when named; * stays in its directory');
  assert.deepEqual(await files(`MODEL ${join(dir, 'a.safetensors')}\n`, dir), ['weight:a.safetensors'], 'absolute path inside the context');
});

test('one layer per file: the more specific pattern wins, an exact path listed twice is an error', async (t) => {
  const dir = await tempDir(t);
  await writeTree(dir, { 'data/train.jsonl': 'd', 'config.json': '{}', 'w.bin': 'w' });
  assert.deepEqual(await files('CONFIG **/*.json*\nDATASET data/**\nMODEL w.bin\n', dir), ['config:config.json', 'weight:w.bin', 'dataset:data/train.jsonl']);
  assert.deepEqual(await files('DATASET **\nCONFIG config.json\n', dir), ['config:config.json', 'dataset:data/train.jsonl', 'dataset:w.bin']);
  await assert.rejects(files('CONFIG w.bin\nMODEL w.bin\n', dir), /MF:2:7: w\.bin is already listed as CONFIG on line 1/);
});

test('patterns that match nothing or leave the context fail at their line and column', async (t) => {
  const dir = await tempDir(t);
  await writeTree(dir, { 'w.bin': 'w', 'empty/.keep': '' });
  await assert.rejects(files('MODEL w.bin\nMODEL nope.bin\n', dir), (e: unknown) => hasErrorCode(e, 'MODELFILE_SYNTAX') && /^MF:2:7: MODEL nope\.bin: no such file/.test((e as Error).message));
  await assert.rejects(files('MODEL w.bin\nCODE **/*.py\n', dir), /MF:2:6: CODE \*\*\/\*\.py: no file matches/);
  await assert.rejects(files('MODEL ../w.bin\n', dir), (e: unknown) => hasErrorCode(e, 'UNSAFE_PATH') && /MF:1:7/.test((e as Error).message));
  await assert.rejects(files('MODEL /etc/passwd\n', dir), (e: unknown) => hasErrorCode(e, 'UNSAFE_PATH'));
  await mkdir(join(dir, 'void'));
  await assert.rejects(files('DATASET void\n', dir), /MF:1:9: void: empty directory/);
  await writeFile(join(dir, 'empty/.keep'), '');
  await assert.rejects(files('DOC README.md\n', dir), (e: unknown) => hasErrorCode(e, 'MODELFILE_SYNTAX'));
  await assert.rejects(resolvePatterns(parseModelfile('NAME x\n'), dir), (e: unknown) => hasErrorCode(e, 'EMPTY_BUILD'));
});

test('symbolic links: followed inside the context, refused when they leave it or dangle', async (t) => {
  const dir = await tempDir(t);
  const outside = await tempDir(t);
  await writeTree(dir, { 'real/w.bin': 'w' });
  await writeTree(outside, { 'secret.bin': 's', 'd/x.bin': 'x' });
  await symlink(join(dir, 'real/w.bin'), join(dir, 'alias.bin'));
  await symlink(join(dir, 'real'), join(dir, 'linkdir'));
  await symlink(join(dir, 'linkdir'), join(dir, 'real', 'loop'));
  assert.deepEqual(await files('MODEL alias.bin\nMODEL linkdir/*.bin\n', dir), ['weight:alias.bin', 'weight:linkdir/w.bin']);
  assert.deepEqual(await files('MODEL **/*.bin\n', dir), ['weight:alias.bin', 'weight:linkdir/w.bin', 'weight:real/w.bin'], 'a link cycle is cut');
  await symlink(join(outside, 'secret.bin'), join(dir, 'escape.bin'));
  await symlink(join(outside, 'd'), join(dir, 'escdir'));
  await assert.rejects(files('MODEL escape.bin\n', dir), (e: unknown) => hasErrorCode(e, 'UNSAFE_PATH') && /escape\.bin is a symbolic link to .*outside the build context/.test((e as Error).message));
  await assert.rejects(files('MODEL escdir/x.bin\n', dir), (e: unknown) => hasErrorCode(e, 'UNSAFE_PATH'));
  await assert.rejects(files('MODEL *.bin\n', dir), (e: unknown) => hasErrorCode(e, 'UNSAFE_PATH'), 'a glob that reaches an escaping link');
  await symlink(join(dir, 'gone.bin'), join(dir, 'dangling.bin'));
  await assert.rejects(files('MODEL dangling.bin\n', dir), /MF:1:7: dangling\.bin: symbolic link to a missing file/);
});

test('a directory pattern ranks like its literal prefix, below a file named exactly', async (t) => {
  const dir = await tempDir(t);
  await writeTree(dir, { 'data/README.md': '#', 'data/a.jsonl': 'a' });
  assert.deepEqual(await files('DATASET data\nDOC data/README.md\n', dir), ['doc:data/README.md', 'dataset:data/a.jsonl']);
  assert.deepEqual(await files('DATASET data\nCONFIG data/*.md\n', dir), ['config:data/README.md', 'dataset:data/a.jsonl']);
});
