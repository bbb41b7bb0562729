import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateModelfile } from './generate.js';
import { classifyFile, WEIGHT_SIZE_THRESHOLD } from './classify.js';
import { formatModelfile, parseModelfile } from './parse.js';
import { hasErrorCode } from '../errors.js';
import { makeModelDir, tempDir, writeTree } from '../test-support/tmp.js';

const patterns = (l: { pattern: string }[]) => l.map((e) => e.pattern);

test('classifyFile follows modctl: by base name, CONFIG → MODEL → CODE → DOC, then by size', () => {
  const cases: Array<[string, string]> = [
    ['config.json', 'config'], ['train.JSONL', 'config'], ['tokenizer.model', 'config'], ['spiece.model', 'config'],
    ['vocab.txt', 'config'], ['merges.txt', 'config'], ['chat_template.jinja', 'config'], ['model.meta', 'config'],
    ['package.json', 'config'], ['model-00001-of-00002.safetensors', 'weight'], ['pytorch_model.bin', 'weight'],
    ['pytorch_model.bin.1', 'weight'], ['m.Q4_K_M.gguf', 'weight'], ['model.onnx', 'weight'], ['model.onnx_data', 'weight'],
    ['variables.data-00000-of-00001', 'weight'], ['tensor0_1', 'weight'], ['sp.model', 'weight'], ['run.py', 'code'],
    ['Makefile', 'code'], ['requirements.txt', 'code'], ['Dockerfile.gpu', 'code'], ['libx.so', 'code'],
    ['README', 'doc'], ['LICENSE-MIT', 'doc'], ['notes.txt', 'doc'], ['figure.PNG', 'doc'], ['paper.pdf', 'doc'],
  ];
  for (const [name, kind] of cases) assert.equal(classifyFile(name, 10).kind, kind, name);
  assert.deepEqual(classifyFile('blob.xyz', WEIGHT_SIZE_THRESHOLD), { kind: 'code', known: false });
  assert.deepEqual(classifyFile('blob.xyz', WEIGHT_SIZE_THRESHOLD + 1), { kind: 'weight', known: false });
});

test('generate lists every file by kind, reads config.json, skips hidden files and caches', async (t) => {
  const dir = join(await tempDir(t), 'Qwen2.5 0.5B');
  await mkdir(dir);
  await makeModelDir(dir);
  await writeFile(join(dir, 'generation_config.json'), JSON.stringify({ torch_dtype: 'float16' }));
  await writeTree(dir, {
    '.git/HEAD': 'ref', '.hidden.bin': 'x', '__pycache__/m.cpython-311.pyc': 'x', 'm.pyc': 'x', 'Modelfile': 'MODEL x',
    'sub/dir/weights.gguf': 'GGUF', 'unknown.xyz': 'small',
  });
  await truncate(join(dir, 'huge.xyz'), WEIGHT_SIZE_THRESHOLD + 1).catch(async () => {
    await writeFile(join(dir, 'huge.xyz'), '');
    await truncate(join(dir, 'huge.xyz'), WEIGHT_SIZE_THRESHOLD + 1); // sparse: no disk used
  });
  const { modelfile: mf, warnings } = await generateModelfile(dir);
  assert.equal(mf.name, 'qwen2.5-0.5b', 'directory name made into a valid repository name');
  assert.equal(mf.family, 'llama');
  assert.equal(mf.arch, 'transformer');
  assert.equal(mf.precision, 'float16', 'generation_config.json wins over config.json');
  assert.equal(mf.format, undefined, 'most weight bytes (huge.xyz) are of no known format');
  assert.match(warnings.join('\n'), /weights in several formats: unknown \(1 file, 128\.0 MB\), safetensors \(1 file, 300\.0 KB\), gguf \(1 file, 4 B\)/);
  assert.match(warnings.join('\n'), /model\.safetensors: not a valid safetensors file: .*packaged as it is/);
  assert.deepEqual(patterns(mf.config), ['config.json', 'data/train.jsonl', 'generation_config.json', 'tokenizer.json']);
  assert.deepEqual(patterns(mf.model), ['huge.xyz', 'model.safetensors', 'sub/dir/weights.gguf']);
  assert.deepEqual(patterns(mf.code), ['modeling.py', 'unknown.xyz']);
  assert.deepEqual(patterns(mf.doc), ['README.md']);
  assert.match(warnings.join('\n'), /2 file\(s\) of unknown type packaged by size.*huge\.xyz, unknown\.xyz/);
  // The text is deterministic and parses back.
  const text = formatModelfile(mf);
  assert.equal(formatModelfile((await generateModelfile(dir)).modelfile), text);
  assert.deepEqual(patterns(parseModelfile(text).model), patterns(mf.model));
  // Options win over what is inferred.
  const o = await generateModelfile(dir, { name: 'n', family: 'qwen2', precision: 'bf16', paramSize: '0.5b', quantization: 'q8_0', format: 'safetensors', arch: 'moe' });
  assert.deepEqual([o.modelfile.name, o.modelfile.family, o.modelfile.precision, o.modelfile.paramSize, o.modelfile.quantization, o.modelfile.format, o.modelfile.arch], ['n', 'qwen2', 'bf16', '0.5b', 'q8_0', 'safetensors', 'moe']);
});

test('--include rescues skipped files, --exclude wins, .mpkignore excludes like .gitignore', async (t) => {
  const dir = await tempDir(t);
  await writeTree(dir, {
    'model.safetensors': 'w', '.cache/keep.json': '{}', '.cache/other.json': '{}', 'logs/run1.log': 'l', 'logs/run2.log': 'l',
    'ckpt/a.bin': 'a', 'ckpt/b.bin': 'b', 'deep/x/notes.md': 'n', 'deep/y/notes.md': 'n',
    '.mpkignore': '# training leftovers\nlogs/\nnotes.md\n!deep/y/notes.md\n/ckpt/b.bin\n',
  });
  const { modelfile: mf } = await generateModelfile(dir, { include: ['.cache/keep.json'], exclude: ['ckpt/a.bin'] });
  assert.deepEqual(patterns(mf.config), ['.cache/keep.json']);
  assert.deepEqual(patterns(mf.model), ['model.safetensors']);
  assert.deepEqual(patterns(mf.doc), ['deep/y/notes.md']);
  const all = await generateModelfile(dir, { include: ['.cache/**'], exclude: ['**/*.json'] });
  assert.deepEqual(patterns(all.modelfile.config), [], 'exclude wins over include');
});

test('generate refuses a directory without model, code or dataset files, and warns on escaping links', async (t) => {
  const dir = await tempDir(t);
  await writeTree(dir, { 'README.md': '# x', 'config.json': '{}' });
  await assert.rejects(generateModelfile(dir), (e: unknown) => hasErrorCode(e, 'EMPTY_BUILD') && /no model, code or dataset files/.test((e as Error).message));
  // One file is a model of its own; a README alone is not one.
  await assert.rejects(generateModelfile(join(dir, 'README.md')), (e: unknown) => hasErrorCode(e, 'EMPTY_BUILD'));
  await assert.rejects(generateModelfile(join(dir, 'nope')), (e: unknown) => hasErrorCode(e, 'NOT_FOUND'));
  const outside = await tempDir(t);
  await writeFile(join(outside, 'secret.bin'), 's');
  await writeFile(join(dir, 'w.safetensors'), 'w');
  await symlink(join(outside, 'secret.bin'), join(dir, 'link.bin'));
  await symlink(join(dir, 'w.safetensors'), join(dir, 'alias.bin'));
  const { modelfile: mf, warnings } = await generateModelfile(dir);
  assert.deepEqual(patterns(mf.model), ['alias.bin', 'w.safetensors'], 'a link inside is followed');
  assert.match(warnings.join('\n'), /skipped link\.bin: symbolic link to .*secret\.bin, outside/);
  // alias.bin (pytorch by name) and w.safetensors hold as many bytes: the format a reader knows wins, and a warning says so.
  assert.equal(mf.format, 'safetensors');
  assert.match(warnings.join('\n'), /weights in several formats: safetensors \(1 file, 1 B\), pytorch \(1 file, 1 B\); the fields describe the safetensors ones/);
});
