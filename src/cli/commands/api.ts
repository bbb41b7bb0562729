/** `mpk api`: an OpenAI-compatible HTTP API over every model in the store, until Ctrl-C / SIGTERM. */
import { DEFAULT_API_ADDR, startApi, type ApiOptions } from '../../api/server.js';
import { PackError } from '../../errors.js';
import type { CommandSpec, Ctx } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { parseSize } from '../registry-flags.js';
import { wholeNumber } from '../flag-values.js';
import { withStore } from '../store.js';

export function apiOptions(ctx: Ctx, v: Record<string, unknown>): Omit<ApiOptions, 'store'> {
  const o: Omit<ApiOptions, 'store'> = { addr: typeof v.addr === 'string' ? v.addr : DEFAULT_API_ADDR };
  const key = typeof v['api-key'] === 'string' ? v['api-key'] : ctx.env.MPK_API_KEY || undefined;
  if (key !== undefined) o.apiKey = key;
  const int = (flag: string, min: number, example: string): number | undefined => (typeof v[flag] === 'string' ? wholeNumber(flag, v[flag] as string, min, example) : undefined);
  const maxModels = int('max-models', 1, '2');
  const queue = int('queue', 0, '16');
  const threads = int('threads', 1, '2');
  const ctxSize = int('ctx-size', 1, '4096');
  const parallel = int('parallel', 1, '2');
  if (maxModels !== undefined) o.maxModels = maxModels;
  if (queue !== undefined) o.queue = queue;
  if (threads !== undefined) o.threads = threads;
  if (ctxSize !== undefined) o.contextSize = ctxSize;
  if (parallel !== undefined) o.parallel = parallel;
  if (typeof v['max-memory'] === 'string') {
    const bytes = parseSize('max-memory', v['max-memory']);
    if (bytes < 1) throw new PackError('USAGE', `--max-memory ${JSON.stringify(v['max-memory'])}: must be more than 0`, { hint: 'e.g. --max-memory 8GiB' });
    o.maxMemory = bytes;
  }
  if (!ctx.quiet && !v.quiet) o.log = (line) => void ctx.stdout.write(`${line}\n`);
  return o;
}

export const apiCommand: CommandSpec = {
  name: 'api',
  usage: 'mpk api [--addr HOST:PORT] [--api-key KEY] [--max-models N] [--max-memory SIZE] [--queue N] [--threads N] [--ctx-size N] [--parallel N]',
  summary:
    'Serve every GGUF model in the store over an OpenAI-compatible HTTP API (as Docker Model Runner and\n' +
    '`ollama serve` do): GET /v1/models, POST /v1/chat/completions, /v1/completions, /v1/embeddings, with\n' +
    'streaming. A request\'s "model" is a store reference (e.g. models/tiny:q8). Models load on first use;\n' +
    'the least recently used idle one is unloaded past --max-models or --max-memory. Runs until Ctrl-C.',
  help: [
    `--addr HOST:PORT      listen address (default ${DEFAULT_API_ADDR}; port 0 picks one; off loopback needs --api-key)`,
    '--api-key KEY         require Authorization: Bearer KEY on every request (default $MPK_API_KEY)',
    '--max-models N        models loaded at once (default 2)',
    '--max-memory SIZE     sum of loaded models\' weights, e.g. 8GiB (default no limit)',
    '--queue N             requests waiting per model (default 16); more get 429 with Retry-After',
    '--threads N           CPU threads per model (default: the cores available)',
    '--ctx-size N          context size in tokens of every model (default: the model\'s, at most 4096)',
    '--parallel N          requests each model generates for at once (default 1)',
    '-q, --quiet           no request log',
  ],
  options: {
    addr: { type: 'string' },
    'api-key': { type: 'string' },
    'max-models': { type: 'string' },
    'max-memory': { type: 'string' },
    queue: { type: 'string' },
    threads: { type: 'string' },
    'ctx-size': { type: 'string' },
    parallel: { type: 'string' },
    quiet: { type: 'boolean', short: 'q' },
  },
  args: [0, 0],
  async run(ctx, v) {
    const signal = ctx.signal;
    if (!signal) throw new PackError('USAGE', 'mpk api runs until interrupted, and this caller gave no signal', { hint: 'run it from the mpk command, or call startApi() from the library' });
    const o = apiOptions(ctx, v);
    return withStore(ctx, async (store) => {
      const api = await startApi({ ...o, store });
      try {
        const n = (await api.models()).length;
        ctx.stdout.write(`Serving ${n} model${n === 1 ? '' : 's'} on ${api.url}/v1${o.apiKey ? ' (API key required)' : ''}; Ctrl-C stops\n`);
        await new Promise<void>((r) => (signal.aborted ? r() : signal.addEventListener('abort', () => r(), { once: true })));
        ctx.stderr.write('mpk api: stopping (running requests may finish)\n');
      } finally {
        await api.close();
      }
      return EXIT.OK;
    });
  },
};
