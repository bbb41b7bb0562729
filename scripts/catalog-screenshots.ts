// Screenshots of the web catalog for the README (docs/catalog*.png): a scratch `mpk serve` with a
// few demo models (small blobs; the names, cards and facts are made up), shot by chromium.
// Run: node --import tsx scripts/catalog-screenshots.ts
import { join } from 'node:path';
import { CHROMIUM_ARGS, CHROMIUM } from '../src/test-support/browser.js';
import { pushTestIndex, pushTestModel, type TestModel } from '../src/test-support/catalog-models.js';
import { startTestServer } from '../src/test-support/serve.js';
import { chromium } from 'playwright-core';

const cleanups: Array<() => unknown> = [];
const hooks = { after: (fn: () => unknown) => void cleanups.push(fn) };
const docs = new URL('../docs/', import.meta.url).pathname;

const card = (title: string, arch: string, params: string) => `# ${title}

${title} is a ${params}-parameter **${arch}** language model, packaged as a CNCF ModelPack artifact
with \`mpk build\` and served by \`mpk serve\`.

## Use

\`\`\`sh
mpk run ${title.toLowerCase().replace(/\s+/g, '-')} "Why is the sky blue?"
\`\`\`

## Evaluation

| benchmark | score |
|:----------|------:|
| MMLU      | 63.4  |
| GSM8K     | 71.2  |
| HellaSwag | 80.9  |

## Licence

Released under the Apache 2.0 licence. See the [model repository](https://example.com/models) for details.
`;

const models: Array<[string, string, TestModel]> = [
  ['meta/llama-3.2-1b-instruct', 'q4_k_m', { arch: 'llama', paramSize: '1.24B', quantization: 'Q4_K_M', weightBytes: 3_100_000 }],
  ['qwen/qwen2.5-7b-instruct', 'q8_0', { arch: 'qwen2', paramSize: '7.62B', quantization: 'Q8_0', weightBytes: 8_200_000 }],
  ['mistralai/mistral-7b-v0.3', 'q5_k_m', { arch: 'llama', paramSize: '7.25B', quantization: 'Q5_K_M', weightBytes: 5_100_000 }],
  ['google/gemma-2-2b-it', 'f16', { arch: 'gemma2', paramSize: '2.61B', quantization: 'F16', weightBytes: 5_200_000 }],
  ['microsoft/phi-3-mini-4k', 'q4_0', { arch: 'phi3', paramSize: '3.82B', quantization: 'Q4_0', weightBytes: 2_200_000 }],
  ['tinyllama/tinyllama-1.1b-chat', 'q8_0', { arch: 'llama', paramSize: '1.1B', quantization: 'Q8_0', weightBytes: 1_170_000 }],
  ['nomic-ai/nomic-embed-text-v1.5', 'f16', { arch: 'nomic-bert', paramSize: '137M', quantization: 'F16', weightBytes: 270_000 }],
  ['google-bert/bert-base-uncased', 'main', { arch: 'bert', format: 'safetensors', paramSize: '110M', quantization: '', weightName: 'model.safetensors', weightBytes: 440_000 }],
];

async function main(): Promise<void> {
  const s = await startTestServer(hooks);
  const now = Date.now();
  for (const [i, [name, tag, m]] of models.entries()) {
    const title = name.split('/')[1]!.replace(/-/g, ' ').replace(/\b\w/g, (c) => c.toUpperCase());
    const gguf = m.format === 'safetensors' ? undefined : { 'general.architecture': m.arch, 'general.name': title, 'general.license': 'apache-2.0', [`${m.arch}.context_length`]: 8192, [`${m.arch}.block_count`]: 16 + i * 4, [`${m.arch}.embedding_length`]: 2048, 'tokenizer.ggml.model': 'gpt2' };
    await pushTestModel(s.url, name, tag, { ...m, readme: card(title, m.arch!, m.paramSize!), licenses: ['Apache-2.0'], createdAt: new Date(now - i * 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z'), ...(gguf ? { gguf } : {}) });
  }
  const q4 = await pushTestModel(s.url, 'meta/llama-3.2-1b-instruct', 'q8_0', { arch: 'llama', paramSize: '1.24B', quantization: 'Q8_0', weightBytes: 1_300_000, readme: card('Llama 3.2 1B Instruct', 'llama', '1.24B') });
  const q8 = (await (await fetch(`${s.url}/-/api/r/meta/llama-3.2-1b-instruct`)).json()).tags.find((t: { tag: string }) => t.tag === 'q4_k_m').digest;
  await pushTestIndex(s.url, 'meta/llama-3.2-1b-instruct', 'latest', [
    { digest: q8, quantization: 'Q4_K_M' },
    { digest: q4, quantization: 'Q8_0' },
  ]);

  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  cleanups.push(() => browser.close());
  const shoot = async (path: string, file: string, opts: { dark?: boolean; width?: number; height?: number } = {}): Promise<void> => {
    const page = await browser.newPage({ viewport: { width: opts.width ?? 1280, height: opts.height ?? 820 }, colorScheme: opts.dark ? 'dark' : 'light', deviceScaleFactor: 1 });
    await page.goto(`${s.url}${path}`);
    await page.screenshot({ path: join(docs, file) });
    await page.close();
  };
  await shoot('/', 'catalog.png');
  await shoot('/r/meta/llama-3.2-1b-instruct/-/q4_k_m', 'catalog-model.png', { height: 1000 });
  await shoot('/r/qwen/qwen2.5-7b-instruct/-/q8_0', 'catalog-model-dark.png', { dark: true, width: 420, height: 900 });
  console.log(`wrote ${docs}catalog.png, catalog-model.png, catalog-model-dark.png`);
}

try {
  await main();
} finally {
  for (const fn of cleanups.reverse()) await fn();
}
