/** The statement: its bytes are canonical, it reads back, and each way a model can differ has its own code. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PackError } from '../errors.js';
import type { ModelFile } from '../modelpack/model-view.js';
import { compareStatement, parseStatement, statementBytes } from './statement.js';

const D = (c: string) => `sha256:${c.repeat(64)}`;
const file = (path: string, digest: string): ModelFile => ({ path, kind: 'weight', encoding: 'raw', layer: { mediaType: 'application/octet-stream', digest, size: 3 } }) as ModelFile;
const manifest = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: D('a'), size: 100 };
const files = [file('model.gguf', D('1')), file('README.md', D('2'))];

const code = (fn: () => void) => {
  try {
    fn();
  } catch (e) {
    return (e as PackError).code;
  }
  return 'none';
};

test('statement bytes are canonical and read back; each mismatch has its own code', () => {
  const bytes = statementBytes('team/m', manifest, files);
  assert.equal(bytes.toString(), statementBytes('team/m', manifest, [...files]).toString());
  assert.ok(bytes.toString().startsWith('{"_type":"https://in-toto.io/Statement/v1","predicate":'));
  const st = parseStatement(bytes, 'sig');
  assert.deepEqual(st.files.map((f) => f.path), ['model.gguf', 'README.md']);

  assert.equal(code(() => compareStatement(st, D('a'), 'team/m', files, 'x')), 'none');
  assert.equal(code(() => compareStatement(st, D('b'), 'team/m', files, 'x')), 'SIGNATURE_MANIFEST_CHANGED');
  assert.equal(code(() => compareStatement(st, D('b'), 'team/m', [files[0]!, file('README.md', D('3'))], 'x')), 'SIGNATURE_FILE_CHANGED');
  assert.equal(code(() => compareStatement(st, D('b'), 'other/m', [file('x.gguf', D('4'))], 'x')), 'SIGNATURE_OTHER_MODEL');
  // the manifest signed, but a statement that lists other files (a signer's lie) is refused too
  assert.equal(code(() => compareStatement(st, D('a'), 'team/m', [files[0]!], 'x')), 'SIGNATURE_FILE_CHANGED');

  for (const bad of ['{', '{"_type":"https://in-toto.io/Statement/v0.1"}', bytes.toString().replace('"size":3', '"size":"3"')]) {
    assert.equal(code(() => parseStatement(Buffer.from(bad), 'sig')), 'BUNDLE_INVALID', bad.slice(0, 40));
  }
});
