import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PackError } from '../errors.js';
import { tempDir } from '../test-support/tmp.js';
import { bytesField, encodeOnnxGraph, encodeOnnxModel, tag, varint, varintField, writeOnnxModel } from '../test-support/onnx-writer.js';
import { mutate, prng, safetensorsBytes, scratchFile } from '../test-support/safetensors-writer.js';
import { sniffOnnx } from './onnx.js';

test('a hand-encoded ModelProto: every field sniffOnnx reports, opset_import found past a 200 KiB graph', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'model.onnx');
  await writeOnnxModel(path, {
    irVersion: 9,
    producerName: 'pytorch',
    producerVersion: '2.5.1',
    domain: 'ai.mpk.test',
    modelVersion: 3,
    docString: 'a test model',
    opsetImports: [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }],
    graph: { name: 'main', initializerBytes: 200_000 },
    metadataProps: { author: 'mpk' },
  });
  const info = await sniffOnnx(path);
  assert.deepEqual(info, {
    irVersion: 9,
    producerName: 'pytorch',
    producerVersion: '2.5.1',
    domain: 'ai.mpk.test',
    modelVersion: 3,
    opsetImports: [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }],
    graphBytes: encodeOnnxGraph({ name: 'main', initializerBytes: 200_000 }).length,
  });
  // opset_import before the graph, no producer, an opset without a domain field.
  await writeOnnxModel(path, { opsetFirst: true, producerName: null, opsetImports: [{ version: 13 }] });
  const info2 = await sniffOnnx(path);
  assert.equal(info2?.irVersion, 8);
  assert.deepEqual(info2?.opsetImports, [{ domain: '', version: 13 }]);
  assert.ok(info2 && !('producerName' in info2));
  // A model without a graph but with an opset (a functions-only library) still counts; neither does not.
  await writeOnnxModel(path, { graph: false });
  assert.equal((await sniffOnnx(path))?.graphBytes, undefined);
  await writeOnnxModel(path, { graph: false, opsetImports: [] });
  assert.equal(await sniffOnnx(path), undefined);
});

test('the graph is skipped by its length, never read: a 20 GB (sparse) graph with opset_import after it', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'huge.onnx');
  const graphLen = 20 * 1024 ** 3;
  const head = Buffer.concat([varintField(1, 7), bytesField(2, 'big'), bytesField(6, 'd'.repeat(100_000)), tag(7, 2), varint(graphLen)]);
  const tail = bytesField(8, Buffer.concat([bytesField(1, ''), varintField(2, 11)]));
  const fh = await open(path, 'w');
  try {
    await fh.write(head, 0, head.length, 0);
    await fh.write(tail, 0, tail.length, head.length + graphLen); // the graph is a hole: zeros, no disk
  } finally {
    await fh.close();
  }
  const started = Date.now();
  const info = await sniffOnnx(path);
  assert.deepEqual(info, { irVersion: 7, producerName: 'big', opsetImports: [{ domain: '', version: 11 }], graphBytes: graphLen });
  assert.ok(Date.now() - started < 2000);
  // The same file one byte short: the opset no longer fits, so it is not a well-formed model.
  const fh2 = await open(path, 'r+');
  await fh2.truncate(head.length + graphLen + tail.length - 1);
  await fh2.close();
  assert.equal(await sniffOnnx(path), undefined);
});

test('not ONNX: other formats, random bytes, broken or implausible protobuf', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'x.onnx');
  const rand = prng(0x0e11);
  const random = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(rand() * 256)));
  const good = encodeOnnxModel();
  const cases: Array<[string, Uint8Array]> = [
    ['empty', Buffer.alloc(0)],
    ['one byte', Buffer.from([8])],
    ['JSON', Buffer.from('{"ir_version": 8, "graph": {}}')],
    ['text', Buffer.from('ir_version: 8\nproducer_name: "x"\n')],
    ['GGUF magic', Buffer.concat([Buffer.from('GGUF'), Buffer.from([3, 0, 0, 0]), random(64)])],
    ['safetensors', safetensorsBytes({ w: { dtype: 'F32', shape: [4] } })],
    ['zeros', Buffer.alloc(4096)],
    ['ir_version only', varintField(1, 8)],
    ['ir_version 0', Buffer.concat([varintField(1, 0), good.subarray(2)])],
    ['ir_version 1000', Buffer.concat([varintField(1, 1000), good.subarray(2)])],
    ['negative ir_version', Buffer.concat([varintField(1, -1), good.subarray(2)])],
    ['no ir_version', good.subarray(2)],
    ['truncated in the graph', good.subarray(0, good.length - 10)],
    ['trailing garbage', Buffer.concat([good, Buffer.from([0xff])])],
    ['trailing zero', Buffer.concat([good, Buffer.from([0])])],
    ['producer_name as a varint', Buffer.concat([good, varintField(2, 5)])],
    ['ir_version as bytes', Buffer.concat([good, bytesField(1, 'x')])],
    ['a group', Buffer.concat([good, tag(30, 3)])],
    ['wire type 7', Buffer.concat([good, tag(30, 7)])],
    ['field 0', Buffer.concat([good, Buffer.from([0x02, 0x00])])],
    ['invalid UTF-8 producer', Buffer.concat([varintField(1, 8), bytesField(2, Buffer.from([0xc3, 0x28])), good.subarray(2)])],
    ['opset without a version', Buffer.concat([good, bytesField(8, bytesField(1, 'x'))])],
    ['an 11-byte varint', Buffer.concat([Buffer.from([0x08]), Buffer.alloc(10, 0xff), Buffer.from([0x01])])],
    ['fixed64 past the end', Buffer.concat([good, tag(30, 1), Buffer.alloc(4)])],
  ];
  for (let i = 0; i < 20; i++) cases.push([`random ${i}`, random(1 + Math.floor(rand() * 2000))]);
  for (let i = 0; i < 20; i++) cases.push([`0x08 then random ${i}`, Buffer.concat([Buffer.from([0x08, 0x08]), random(1 + Math.floor(rand() * 2000))])]);
  for (const [what, bytes] of cases) {
    await writeFile(path, bytes);
    assert.equal(await sniffOnnx(path), undefined, what);
  }
  // Unknown fields of any valid wire type are skipped (newer ONNX versions add fields).
  await writeFile(path, Buffer.concat([good, varintField(30, 1), bytesField(31, 'x'), tag(32, 1), Buffer.alloc(8), tag(33, 5), Buffer.alloc(4)]));
  assert.equal((await sniffOnnx(path))?.irVersion, 8);
});

test('sniffOnnx: a directory or a missing file is an I/O error, not "not ONNX"', async (t) => {
  const dir = await tempDir(t);
  await assert.rejects(sniffOnnx(dir), (e) => e instanceof PackError && e.code === 'IO' && e.message.startsWith(`${dir}: not a regular file`));
  await assert.rejects(sniffOnnx(join(dir, 'none.onnx')), (e) => e instanceof PackError && e.code === 'NOT_FOUND');
});

// The onnx Python package, when installed (Debian: python3-onnx), as an independent writer and checker.
async function pythonWithOnnx(): Promise<string | undefined> {
  for (const py of ['/usr/bin/python3', 'python3']) {
    try {
      await promisify(execFile)(py, ['-c', 'import onnx'], { timeout: 20_000 });
      return py;
    } catch {
      /* next */
    }
  }
  return undefined;
}

test('against the onnx package: its models are recognised, and it accepts the test writer', async (t) => {
  const py = await pythonWithOnnx();
  if (!py) {
    const reason = 'no python3 with the onnx package (apt-get install python3-onnx, or run .ci/run)';
    if (process.env.CI === 'true') throw new Error(`CI: ${reason}`);
    t.skip(reason);
    return;
  }
  const dir = await tempDir(t);
  const theirs = join(dir, 'theirs.onnx');
  const ours = join(dir, 'ours.onnx');
  await writeOnnxModel(ours, { producerVersion: '1.0', opsetImports: [{ domain: '', version: 13 }], graph: { initializerBytes: 100_000 } });
  const script = `
import sys, onnx
from onnx import helper, TensorProto, numpy_helper
import numpy as np
w = numpy_helper.from_array(np.arange(40000, dtype=np.float32), name="w")
x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [40000])
y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [40000])
g = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g", [x], [y], [w])
m = helper.make_model(g, producer_name="onnx-helper", producer_version="9.9", opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("ai.onnx.ml", 3)])
m.model_version = 5
m.ir_version = 8
onnx.checker.check_model(m, full_check=True)
onnx.save(m, sys.argv[1])
ours = onnx.load(sys.argv[2])
onnx.checker.check_model(ours, full_check=True)
print(ours.ir_version, ours.producer_name, ours.producer_version, [(o.domain, o.version) for o in ours.opset_import], len(ours.graph.initializer[0].raw_data))
`;
  const { stdout } = await promisify(execFile)(py, ['-c', script, theirs, ours], { timeout: 60_000 });
  assert.equal(stdout.trim(), "8 mpk-test 1.0 [('', 13)] 100000", 'the onnx package reads the test writer back');
  const info = await sniffOnnx(theirs);
  assert.ok(info && info.graphBytes! > 160_000);
  assert.deepEqual({ ...info, graphBytes: 0 }, {
    irVersion: 8,
    producerName: 'onnx-helper',
    producerVersion: '9.9',
    modelVersion: 5,
    opsetImports: [{ domain: '', version: 13 }, { domain: 'ai.onnx.ml', version: 3 }],
    graphBytes: 0,
  });
});

test('fuzz: 1,500 seeded mutations of ONNX models are recognised or not, never an error', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'fuzz.onnx');
  const bases = [
    encodeOnnxModel({ producerVersion: '1', domain: 'd', modelVersion: 2, docString: 'doc', metadataProps: { a: 'b' } }),
    encodeOnnxModel({ opsetFirst: true, opsetImports: [{ domain: 'x', version: 1 }, { version: 18 }] }),
    encodeOnnxModel({ graph: { initializerBytes: 70_000 } }),
  ];
  const seed = 0x0a1e;
  const rand = prng(seed);
  const file = await scratchFile(path);
  t.after(() => file.close());
  let recognised = 0;
  const started = Date.now();
  for (let i = 0; i < 1500; i++) {
    const base = bases[i % bases.length]!;
    const { bytes, ops } = mutate(base, rand, { hotEnd: 64 });
    await file.set(bytes);
    const where = `seed ${seed}, case ${i}: ${ops.join(', ')}`;
    let info;
    try {
      info = await sniffOnnx(path);
    } catch (e) {
      assert.fail(`${where}: ${(e as Error)?.stack ?? String(e)}`);
    }
    if (info) {
      recognised++;
      assert.ok(Number.isSafeInteger(info.irVersion) && info.irVersion >= 1 && info.irVersion <= 100, where);
      assert.ok(info.graphBytes !== undefined || info.opsetImports.length > 0, where);
      assert.ok(info.opsetImports.every((o) => Number.isSafeInteger(o.version) && typeof o.domain === 'string'), where);
    }
  }
  t.diagnostic(`${recognised} of 1500 still recognised, ${Date.now() - started} ms`);
  assert.ok(recognised > 50 && recognised < 1450, `${recognised} recognised`);
});
