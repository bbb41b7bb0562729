/**
 * Writes the tiny random-weight LLaMA GGUF (and optionally a LoRA adapter for it), for demos:
 *
 *   node --import tsx scripts/tiny-llama.ts OUT.gguf [--type q8_0|f32|f16] [--seed N] [--lora OUT-lora.gguf]
 *
 * Prints one line per file written: "PATH SIZE" (size in bytes). Same arguments → same bytes.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { writeTinyLlama, writeTinyLora, type TinyLlamaFileType } from '../src/test-support/tiny-llama.js';

const USAGE = 'usage: node --import tsx scripts/tiny-llama.ts OUT.gguf [--type q8_0|f32|f16] [--seed N] [--lora OUT-lora.gguf]';
const TYPES: Record<string, TinyLlamaFileType> = { q8_0: 'Q8_0', f32: 'F32', f16: 'F16' };

function fail(message: string): never {
  process.stderr.write(`tiny-llama: ${message}\n${USAGE}\n`);
  process.exit(2);
}

let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      type: { type: 'string', default: 'q8_0' },
      seed: { type: 'string', default: '1' },
      lora: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
} catch (err) {
  fail((err as Error).message);
}
const { values, positionals } = parsed;
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (positionals.length !== 1) fail('give exactly one output path');
const fileType = TYPES[values.type.toLowerCase()];
if (!fileType) fail(`unknown --type ${values.type}`);
const seed = Number(values.seed);
if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) fail(`--seed must be an integer in 0..2^32-1, got ${values.seed}`);

mkdirSync(dirname(positionals[0]!), { recursive: true });
if (values.lora !== undefined) mkdirSync(dirname(values.lora), { recursive: true });
const model = await writeTinyLlama(positionals[0]!, { fileType, seed });
process.stdout.write(`${model.path} ${model.size}\n`);
if (values.lora !== undefined) {
  const lora = await writeTinyLora(values.lora); // fits the model of any seed (same vocabulary and shapes)
  process.stdout.write(`${lora.path} ${lora.size}\n`);
}
