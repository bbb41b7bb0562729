/**
 * Runtime settings: Ollama's params.json read leniently (what is wrong is left out, never an
 * error), Go templates recognised by their chat family, and the precedence flags > model > GGUF.
 * modelSettings on hand-made Ollama and DMR artifacts in a real store.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DOCKER_AI_CHAT_TEMPLATE, DOCKER_AI_CONFIG_V01, DOCKER_AI_GGUF } from '../interop/docker-ai.js';
import { loadModel } from '../interop/load-model.js';
import { OLLAMA_CONFIG, OLLAMA_MODEL, OLLAMA_PARAMS, OLLAMA_SYSTEM, OLLAMA_TEMPLATE } from '../interop/ollama.js';
import { DOCKER_MANIFEST, OCI_MANIFEST } from '../oci/media-types.js';
import { LocalStore } from '../store/store.js';
import { descOf, fakeGguf, handMade, storeHandMade } from '../test-support/interop.js';
import { tempDir } from '../test-support/tmp.js';
import { goTemplateFamily, mergeSettings, modelSettings, ollamaParams, type RunSettings } from './settings.js';

test('ollamaParams: the keys mpk uses, typed as Ollama writes them; others ignored', () => {
  assert.deepEqual(
    ollamaParams(JSON.stringify({ num_ctx: 8192, num_predict: 128, temperature: 0.7, top_p: 0.9, seed: 42, stop: ['<|end|>', '<|user|>'], repeat_penalty: 1.1, mirostat: 2, num_gpu: 99 })),
    { contextSize: 8192, maxTokens: 128, temperature: 0.7, topP: 0.9, seed: 42, stop: ['<|end|>', '<|user|>'] },
  );
  assert.deepEqual(ollamaParams('{"temperature":0,"top_p":0,"seed":0}'), { temperature: 0, topP: 0, seed: 0 }, 'zero is a value, not absence');
  assert.deepEqual(ollamaParams('{"top_p":1}'), { topP: 1 });
});

test('ollamaParams: text that is not a JSON object gives nothing', () => {
  for (const text of ['', '{', 'num_ctx 4096', 'null', '[]', '[{"num_ctx":1}]', '42', '"x"', 'true', '{"num_ctx":4096,}']) {
    assert.deepEqual(ollamaParams(text), {}, JSON.stringify(text));
  }
});

test('ollamaParams: values of the wrong type are left out, the rest kept', () => {
  assert.deepEqual(
    ollamaParams(JSON.stringify({ num_ctx: '4096', num_predict: true, temperature: '0.5', top_p: null, seed: '7', stop: 5, keep: 1 })),
    {},
  );
  assert.deepEqual(ollamaParams(JSON.stringify({ num_ctx: '4096', temperature: 0.2 })), { temperature: 0.2 });
  assert.deepEqual(ollamaParams(JSON.stringify({ num_ctx: 1.5, num_predict: 2.5, seed: 0.5 })), {}, 'counts and seeds are integers');
  assert.deepEqual(ollamaParams(JSON.stringify({ num_ctx: 2 ** 53 })), {}, 'beyond a safe integer');
  assert.deepEqual(ollamaParams('{"temperature":1e999}'), {}, 'Infinity is not a temperature');
});

test('ollamaParams: negative and out-of-range numbers are left out (num_predict -1 is "no limit")', () => {
  assert.deepEqual(ollamaParams(JSON.stringify({ num_ctx: -1, num_predict: -1, temperature: -0.5, top_p: -0.1 })), {});
  assert.deepEqual(ollamaParams(JSON.stringify({ num_ctx: 0, num_predict: 0 })), {}, 'zero context or tokens means the default');
  assert.deepEqual(ollamaParams(JSON.stringify({ top_p: 1.5 })), {}, 'top_p is a probability');
  assert.deepEqual(ollamaParams(JSON.stringify({ temperature: 2.5 })), { temperature: 2.5 }, 'a high temperature is allowed');
});

test('ollamaParams: stop as one string or an array of strings; non-strings and empty strings dropped', () => {
  assert.deepEqual(ollamaParams('{"stop":"<|end|>"}'), { stop: ['<|end|>'] });
  assert.deepEqual(ollamaParams('{"stop":["a","b"]}'), { stop: ['a', 'b'] });
  assert.deepEqual(ollamaParams('{"stop":["a",1,null,"",{"x":1},"b"]}'), { stop: ['a', 'b'] });
  assert.deepEqual(ollamaParams('{"stop":[]}'), {});
  assert.deepEqual(ollamaParams('{"stop":[""]}'), {});
  assert.deepEqual(ollamaParams('{"stop":""}'), {}, 'an empty stop string is no stop text, as in an array');
  assert.deepEqual(ollamaParams('{"stop":{"0":"a"}}'), {});
});

test('goTemplateFamily: each family by its markers, as Ollama writes the templates', () => {
  const llama3 =
    '{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}{{ if .Prompt }}<|start_header_id|>user<|end_header_id|>\n\n{{ .Prompt }}<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n{{ .Response }}<|eot_id|>';
  const chatml = '{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}{{ if .Prompt }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n{{ end }}<|im_start|>assistant\n';
  const gemma = '<start_of_turn>user\n{{ if .System }}{{ .System }} {{ end }}{{ .Prompt }}<end_of_turn>\n<start_of_turn>model\n{{ .Response }}<end_of_turn>\n';
  const llama2 = '[INST] <<SYS>>{{ .System }}<</SYS>>\n\n{{ .Prompt }} [/INST]';
  const mistral = '[INST] {{ if .System }}{{ .System }} {{ end }}{{ .Prompt }}[/INST]';
  assert.equal(goTemplateFamily(llama3), 'llama3');
  assert.equal(goTemplateFamily(chatml), 'chatml');
  assert.equal(goTemplateFamily(gemma), 'gemma');
  assert.equal(goTemplateFamily(llama2), 'llama2', 'llama2 has [INST] too: <<SYS>> tells it from mistral');
  assert.equal(goTemplateFamily(mistral), 'mistral');
  // Ollama's newer templates loop over .Messages; the markers are the same
  assert.equal(goTemplateFamily('{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n'), 'chatml');
});

test('goTemplateFamily: an unknown template leaves the GGUF template in charge (undefined)', () => {
  for (const t of ['', '{{ .Prompt }}', '<|system|>{{ .System }}<|end|><|user|>{{ .Prompt }}<|end|><|assistant|>', '### Instruction:\n{{ .Prompt }}\n### Response:\n']) {
    assert.equal(goTemplateFamily(t), undefined, t);
  }
});

test('mergeSettings: flags > the model’s own > the GGUF’s, field by field', () => {
  const flags: RunSettings = { temperature: 1, stop: ['x'] };
  const model: RunSettings = { temperature: 0, contextSize: 256, system: 'be brief', stop: ['world', 'y'], chatFormat: { family: 'chatml' } };
  const gguf: RunSettings = { contextSize: 2048, topP: 0.9, chatFormat: { jinja: '{{ x }}' } };
  assert.deepEqual(mergeSettings(flags, model, gguf), { temperature: 1, stop: ['x'], contextSize: 256, system: 'be brief', topP: 0.9, chatFormat: { family: 'chatml' } });
  assert.deepEqual(mergeSettings(model, gguf), { temperature: 0, contextSize: 256, system: 'be brief', stop: ['world', 'y'], topP: 0.9, chatFormat: { family: 'chatml' } });
  assert.deepEqual(mergeSettings({}, {}, gguf), gguf);
  assert.deepEqual(mergeSettings(), {});
});

test('mergeSettings: an undefined field does not override; 0 and an empty system do', () => {
  assert.deepEqual(mergeSettings({ contextSize: undefined, temperature: undefined }, { contextSize: 256, temperature: 0.7 }), { contextSize: 256, temperature: 0.7 });
  assert.deepEqual(mergeSettings({ temperature: 0, seed: 0, system: '' }, { temperature: 0.7, seed: 9, system: 'x' }), { temperature: 0, seed: 0, system: '' });
});

test('mergeSettings: inputs are left as they were', () => {
  const a: RunSettings = { temperature: 1 };
  const b: RunSettings = { temperature: 0, contextSize: 256 };
  const layers = [a, b];
  const out = mergeSettings(...layers);
  assert.deepEqual(a, { temperature: 1 });
  assert.deepEqual(b, { temperature: 0, contextSize: 256 });
  assert.deepEqual(layers, [a, b]);
  assert.notEqual(out, a);
  assert.deepEqual(mergeSettings(...layers), out, 'the same answer a second time');
});

test('modelSettings: Ollama layers (an unknown template family adds no chat format; bad params add nothing); DMR context_size and chat template', async (t) => {
  const store = await LocalStore.open(await tempDir(t, 'mpk-settings-'));
  t.after(() => store.close());

  const ollama = async (ref: string, extra: Array<[string, string]>): Promise<RunSettings> => {
    const gguf = fakeGguf(3, 1024);
    const blobs = [gguf, ...extra.map(([, s]) => Buffer.from(s))];
    const layers = [descOf(OLLAMA_MODEL, gguf), ...extra.map(([m, s]) => descOf(m, Buffer.from(s)))];
    const config = Buffer.from(JSON.stringify({ model_format: 'gguf', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) } }));
    const doc = { schemaVersion: 2, mediaType: DOCKER_MANIFEST, config: descOf(OLLAMA_CONFIG, config), layers };
    await storeHandMade(store, ref, handMade(DOCKER_MANIFEST, doc, [config, ...blobs]));
    return modelSettings(store, await loadModel(store, ref));
  };
  assert.deepEqual(
    await ollama('ollama/a:1', [
      [OLLAMA_TEMPLATE, '<|user|>{{ .Prompt }}<|end|><|assistant|>'],
      [OLLAMA_PARAMS, '{"num_ctx": 4096,'],
      [OLLAMA_SYSTEM, 'You are a cat.'],
    ]),
    { system: 'You are a cat.' },
  );
  assert.deepEqual(
    await ollama('ollama/b:1', [
      [OLLAMA_TEMPLATE, '<start_of_turn>user\n{{ .Prompt }}<end_of_turn>\n'],
      [OLLAMA_PARAMS, '{"num_ctx": 4096, "stop": "<end_of_turn>"}'],
    ]),
    { chatFormat: { family: 'gemma' }, contextSize: 4096, stop: ['<end_of_turn>'] },
  );

  const gguf = fakeGguf(4, 1024);
  const template = '{% for m in messages %}{{ m.content }}{% endfor %}';
  const at = (p: string) => ({ 'org.cncf.model.filepath': p });
  const layers = [descOf(DOCKER_AI_GGUF, gguf, at('model.gguf')), descOf(DOCKER_AI_CHAT_TEMPLATE, Buffer.from(template), at('template.jinja'))];
  const config = Buffer.from(JSON.stringify({ config: { format: 'gguf', context_size: 1024 }, descriptor: {}, rootfs: { type: 'rootfs', diff_ids: layers.map((l) => l.digest) } }));
  const doc = { schemaVersion: 2, mediaType: OCI_MANIFEST, config: descOf(DOCKER_AI_CONFIG_V01, config), layers };
  await storeHandMade(store, 'ai/c:1', handMade(OCI_MANIFEST, doc, [config, gguf, Buffer.from(template)]));
  assert.deepEqual(await modelSettings(store, await loadModel(store, 'ai/c:1')), { contextSize: 1024, chatFormat: { jinja: template } });
});
