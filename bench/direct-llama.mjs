// The baseline of bench/run.mjs: node-llama-cpp called directly on a GGUF file, as an app would
// without mpk — load, one greedy chat answer streamed to stdout, stats on stderr.
// Usage: node bench/direct-llama.mjs FILE PROMPT MAX_TOKENS THREADS
import { getLlama, LlamaChat, LlamaLogLevel, resolveChatWrapper } from 'node-llama-cpp';

const [path, prompt, maxTokens, threads] = process.argv.slice(2);
const started = performance.now();
const llama = await getLlama({ gpu: false, build: 'never', skipDownload: true, maxThreads: Number(threads), logLevel: LlamaLogLevel.warn });
const model = await llama.loadModel({ modelPath: path, useMmap: true });
const context = await model.createContext({ contextSize: Math.min(model.trainContextSize, 4096), threads: Number(threads) });
const chat = new LlamaChat({ contextSequence: context.getSequence(), chatWrapper: resolveChatWrapper(model) });
let first;
let tokens = 0;
const asked = performance.now();
await chat.generateResponse([{ type: 'user', text: prompt }, { type: 'model', response: [] }], {
  temperature: 0,
  maxTokens: Number(maxTokens),
  onToken: (t) => void (tokens += t.length),
  onTextChunk: (text) => {
    first ??= performance.now();
    process.stdout.write(text);
  },
});
const done = performance.now();
process.stderr.write(`DIRECT tokens=${tokens} first_ms=${(first - asked).toFixed(1)} tokens_per_second=${(((tokens - 1) * 1000) / (done - first)).toFixed(1)} total_ms=${(done - started).toFixed(0)}\n`);
await llama.dispose();
