/** Sharded safetensors models (the index, its shards) and picking the model in a directory. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PackError } from '../errors.js';
import { rejectsWith } from '../test-support/rejects-with.js';
import { tempDir } from '../test-support/tmp.js';
import { mutate, prng, scratchFile, writeSafetensors, writeShardedSafetensors } from '../test-support/safetensors-writer.js';
import { readSafetensorsModel } from './safetensors-model.js';

const corrupt = (p: Promise<unknown>, path: string, re: RegExp) => rejectsWith(p, 'CORRUPT', path, re);

test('a 7.24B sharded model (sparse files): parameters, paramSize, precision and the index cross-check', async (t) => {
  const dir = await tempDir(t);
  const m = await writeShardedSafetensors(
    dir,
    {
      'model-00001-of-00002.safetensors': { 'model.layers.0.w': { dtype: 'BF16', shape: [3_620_866_048] }, 'model.norm.weight': { dtype: 'F32', shape: [4096] } },
      'model-00002-of-00002.safetensors': { 'model.layers.1.w': { dtype: 'BF16', shape: [3_620_861_952] } },
    },
    { data: 'sparse' },
  );
  for (const arg of [dir, m.indexPath]) {
    const model = await readSafetensorsModel(arg);
    assert.equal(model.indexPath, m.indexPath);
    assert.deepEqual(model.files, m.files);
    assert.deepEqual(model.warnings, []);
    assert.equal(model.totalSize, m.totalSize);
    assert.deepEqual(model.description, {
      tensorCount: 3,
      parameterCount: 7_241_732_096,
      parameterSize: '7.24B',
      tensorBytes: 7_241_728_000 * 2 + 4096 * 4, // BF16 bytes + F32 bytes
      dtypes: { BF16: 7_241_728_000, F32: 4096 },
      precision: 'bfloat16',
    });
    assert.equal(model.description.tensorBytes, m.totalSize);
    assert.deepEqual(model.headers.map((h) => h.tensors.length), [2, 1]);
  }
});

test('sharded: total_size mismatch, tensors outside weight_map and duplicates are warnings', async (t) => {
  const dir = await tempDir(t);
  const shards = {
    'a.safetensors': { x: { dtype: 'F16', shape: [10] }, extra: { dtype: 'F16', shape: [2] } },
    'b.safetensors': { y: { dtype: 'F16', shape: [4] }, x: { dtype: 'F16', shape: [10] } },
  };
  const m = await writeShardedSafetensors(dir, shards, { totalSize: 999, omitFromIndex: ['extra'], weightMap: { x: 'a.safetensors' } });
  const model = await readSafetensorsModel(m.indexPath);
  assert.equal(model.totalSize, 999);
  assert.equal(model.description.tensorCount, 3, 'x once, y, extra');
  assert.equal(model.description.parameterCount, 16);
  assert.equal(model.description.tensorBytes, 32);
  assert.equal(model.warnings.length, 3, model.warnings.join('\n'));
  assert.match(model.warnings.join('\n'), /1 tensor\(s\) in the shards are not in weight_map \(first "extra"\); counted/);
  assert.match(model.warnings.join('\n'), /1 tensor\(s\) appear in more than one shard \(first "x"\); counted once/);
  assert.match(model.warnings.join('\n'), /metadata\.total_size is 999 but the shards' tensors hold 32 bytes/);
  // No metadata at all: nothing to check, nothing to warn about.
  const dir2 = await tempDir(t);
  const m2 = await writeShardedSafetensors(dir2, { 's.safetensors': { w: { dtype: 'I8', shape: [3] } } }, { totalSize: null });
  const model2 = await readSafetensorsModel(m2.indexPath);
  assert.equal(model2.totalSize, undefined);
  assert.deepEqual(model2.warnings, []);
  assert.equal(model2.description.precision, 'int8');
  // A total_size that is not a number is not checked (warned).
  await writeFile(m2.indexPath, JSON.stringify({ metadata: { total_size: 'big' }, weight_map: { w: 's.safetensors' } }));
  assert.match((await readSafetensorsModel(m2.indexPath)).warnings.join(), /total_size is not a byte count/);
});

test('sharded: a missing shard, an escaping or absolute shard name, a tensor in the wrong shard', async (t) => {
  const dir = await tempDir(t);
  const base = { 'a.safetensors': { x: { dtype: 'F32', shape: [2] } }, 'b.safetensors': { y: { dtype: 'F32', shape: [2] } } };
  const index = join(dir, 'model.safetensors.index.json');

  await writeShardedSafetensors(dir, base, { weightMap: { z: 'c.safetensors' } });
  await rejectsWith(readSafetensorsModel(dir), 'NOT_FOUND', index, /weight_map names shard "c\.safetensors", which does not exist/);

  await writeShardedSafetensors(dir, base, { weightMap: { x: '../x.safetensors' } });
  await writeSafetensors(join(dir, '..', 'x.safetensors'), { x: { dtype: 'F32', shape: [2] } });
  t.after(() => import('node:fs/promises').then((f) => f.rm(join(dir, '..', 'x.safetensors'), { force: true })));
  await rejectsWith(readSafetensorsModel(index), 'UNSAFE_PATH', index, /weight_map\["x"\].*contains \.\./);

  for (const bad of ['/etc/passwd', 'C:/x.safetensors', 'a\\b.safetensors', '.', '']) {
    await writeShardedSafetensors(dir, base, { weightMap: { x: bad } });
    await rejectsWith(readSafetensorsModel(index), 'UNSAFE_PATH', index);
  }

  await writeShardedSafetensors(dir, base, { weightMap: { x: 'b.safetensors', y: 'a.safetensors' } });
  await rejectsWith(
    readSafetensorsModel(index),
    'CORRUPT',
    index,
    /weight_map puts tensor "x" in "b\.safetensors", which does not hold it \(and 1 more tensor\(s\) of weight_map are missing\)/,
  );

  // A shard that is itself broken fails with the shard's own error.
  await writeShardedSafetensors(dir, base);
  await truncate(join(dir, 'b.safetensors'), 20);
  await corrupt(readSafetensorsModel(index), join(dir, 'b.safetensors'), /exceeds the file size/);

  // ./ and // in a shard name are normalised, not refused.
  await writeShardedSafetensors(dir, base, { weightMap: { x: './/a.safetensors' } });
  assert.deepEqual((await readSafetensorsModel(index)).files, [join(dir, 'a.safetensors'), join(dir, 'b.safetensors')]);
});

test('sharded: a malformed or oversized index', async (t) => {
  const dir = await tempDir(t);
  await writeSafetensors(join(dir, 'a.safetensors'), { x: { dtype: 'F32', shape: [2] } });
  const index = join(dir, 'model.safetensors.index.json');
  const cases: Array<[string | Buffer, RegExp]> = [
    ['{"weight_map": ', /not valid JSON/],
    ['[]', /not a JSON object/],
    ['{"metadata": {}}', /weight_map is missing/],
    ['{"weight_map": []}', /weight_map is missing or not a JSON object/],
    ['{"weight_map": {}}', /weight_map names no tensor/],
    ['{"weight_map": {"x": 3}}', /weight_map\["x"\] is not a file name/],
    [Buffer.from([0x7b, 0xff, 0x7d]), /not valid UTF-8/],
  ];
  for (const [text, re] of cases) {
    await writeFile(index, text);
    await rejectsWith(readSafetensorsModel(index), 'CORRUPT', index, re);
  }
  await writeFile(index, '');
  await truncate(index, 64 * 1024 * 1024 + 1); // sparse: nothing is read
  await rejectsWith(readSafetensorsModel(index), 'SIZE_EXCEEDS_LIMIT', index, /exceeds the 67108864-byte limit/);
});

test('readSafetensorsModel picks the model in a directory, or says why it cannot', async (t) => {
  const dir = await tempDir(t);
  await rejectsWith(readSafetensorsModel(dir), 'NOT_FOUND', dir, /no model\.safetensors\.index\.json and no \.safetensors file/);
  await rejectsWith(readSafetensorsModel(join(dir, 'nope')), 'NOT_FOUND', join(dir, 'nope'));
  await writeSafetensors(join(dir, 'weights.safetensors'), { w: { dtype: 'F16', shape: [2, 2] } });
  let m = await readSafetensorsModel(dir);
  assert.deepEqual([m.files, m.indexPath, m.description.parameterCount], [[join(dir, 'weights.safetensors')], undefined, 4]);
  await writeSafetensors(join(dir, 'other.safetensors'), { w: { dtype: 'F16', shape: [2] } });
  await rejectsWith(readSafetensorsModel(dir), 'USAGE', dir, /several \.safetensors files/);
  await writeSafetensors(join(dir, 'model.safetensors'), { w: { dtype: 'F16', shape: [3] } });
  m = await readSafetensorsModel(dir);
  assert.deepEqual(m.files, [join(dir, 'model.safetensors')]);
  await writeShardedSafetensors(dir, { 'other.safetensors': { w: { dtype: 'F16', shape: [2] } } }, { indexName: 'diffusion_pytorch_model.safetensors.index.json' });
  assert.equal((await readSafetensorsModel(dir)).indexPath, join(dir, 'diffusion_pytorch_model.safetensors.index.json'));
  await writeShardedSafetensors(dir, { 'other.safetensors': { w: { dtype: 'F16', shape: [2] } } }, { indexName: 'x.safetensors.index.json' });
  await rejectsWith(readSafetensorsModel(dir), 'USAGE', dir, /several safetensors indexes/);
  await writeShardedSafetensors(dir, { 'model.safetensors': { w: { dtype: 'F16', shape: [3] } } });
  assert.equal((await readSafetensorsModel(dir)).indexPath, join(dir, 'model.safetensors.index.json'), 'the conventional name wins');
});

test('fuzz: 300 seeded mutations of an index read or fail cleanly', async (t) => {
  const dir = await tempDir(t);
  const m = await writeShardedSafetensors(dir, {
    'model-00001-of-00002.safetensors': { 'a.weight': { dtype: 'F16', shape: [4, 4] }, 'a.bias': { dtype: 'F16', shape: [4] } },
    'model-00002-of-00002.safetensors': { 'b.weight': { dtype: 'BF16', shape: [4, 4] } },
  });
  await mkdir(join(dir, 'sub'));
  const base = JSON.parse(await readFile(m.indexPath, 'utf8')) as { weight_map: Record<string, unknown>; metadata?: unknown };
  const seed = 0x1dec5;
  const rand = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const names = ['a.weight', 'a.bias', 'b.weight', 'c.weight', '__proto__', ''];
  const values: unknown[] = [
    'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', '../model-00001-of-00002.safetensors', '/etc/hostname',
    'sub', '.', 'model.safetensors.index.json', 'sub/../model-00001-of-00002.safetensors', 'missing.safetensors', 7, null, [], {}, 'a\\b',
  ];
  const totals: unknown[] = [0, 72, 73, -1, 'x', '72', 2 ** 60, null];
  const outcomes = new Map<string, number>();
  const file = await scratchFile(m.indexPath);
  t.after(() => file.close());
  for (let i = 0; i < 300; i++) {
    // Half the cases edit the JSON (names, files, total_size), then any case may also edit bytes.
    const doc = structuredClone(base);
    const ops: string[] = [];
    if (rand() < 0.5) {
      for (let k = 0; k < 1 + Math.floor(rand() * 3); k++) {
        const r = rand();
        if (r < 0.5) {
          const [n, v] = [pick(names), pick(values)];
          Object.defineProperty(doc.weight_map, n, { value: v, enumerable: true, configurable: true, writable: true });
          ops.push(`map ${n}=${JSON.stringify(v)}`);
        } else if (r < 0.7) {
          const n = pick(names);
          delete doc.weight_map[n];
          ops.push(`delete ${n}`);
        } else {
          doc.metadata = { total_size: pick(totals) };
          ops.push(`total ${JSON.stringify(doc.metadata)}`);
        }
      }
    }
    let bytes: Buffer = Buffer.from(JSON.stringify(doc));
    if (rand() < 0.5) {
      const mutated = mutate(bytes, rand);
      bytes = mutated.bytes;
      ops.push(...mutated.ops);
    }
    await file.set(bytes);
    try {
      const model = await readSafetensorsModel(m.indexPath);
      assert.ok(model.description.tensorCount >= 1);
      outcomes.set('ok', (outcomes.get('ok') ?? 0) + 1);
    } catch (e) {
      const where = `seed ${seed}, case ${i}: ${ops.join(', ')}`;
      assert.ok(e instanceof PackError, `${where}: ${(e as Error)?.stack ?? String(e)}`);
      assert.ok(['CORRUPT', 'NOT_FOUND', 'UNSAFE_PATH', 'IO'].includes(e.code), `${where}: ${e.code} ${e.message}`);
      assert.ok(e.message.startsWith(dir) && e.hint, `${where}: ${e.message}`);
      outcomes.set(e.code, (outcomes.get(e.code) ?? 0) + 1);
    }
  }
  t.diagnostic(`outcomes ${JSON.stringify(Object.fromEntries(outcomes))}`);
  for (const k of ['ok', 'CORRUPT', 'NOT_FOUND', 'UNSAFE_PATH']) assert.ok((outcomes.get(k) ?? 0) >= 5, `${k}: ${JSON.stringify(Object.fromEntries(outcomes))}`);
});
