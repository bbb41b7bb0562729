// The API half of bench/run.mjs: `mpk api` with N concurrent streaming clients (each asking for
// the same number of tokens), aggregate tokens/s against node-llama-cpp's direct single-stream
// generation measured in the same run. Target (issue #12): ≥ 0.9x.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { MPK } from './common.mjs';

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

async function streamChat(url, model, tokens) {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'Tell me a story about the cat' }], max_tokens: tokens, temperature: 0, stream: true, stream_options: { include_usage: true } }),
  });
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  let text = '';
  for await (const chunk of res.body) text += Buffer.from(chunk).toString('utf8');
  const usage = text
    .split('\n')
    .filter((l) => l.startsWith('data: {'))
    .map((l) => JSON.parse(l.slice(6)))
    .find((e) => e.usage)?.usage;
  return usage?.completion_tokens ?? 0;
}

export async function apiBench({ env, model, clients, tokens, threads, directTps, parallels = [1, clients] }) {
  for (const parallel of parallels) {
    const port = await freePort();
    const child = spawn(process.execPath, [MPK, 'api', '--addr', `127.0.0.1:${port}`, '--threads', threads, '--parallel', String(parallel), '-q'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    try {
      for (let i = 0; i < 400 && !/Serving/.test(out); i++) {
        if (child.exitCode !== null) throw new Error(`mpk api exited: ${out}`);
        await new Promise((r) => setTimeout(r, 25));
      }
      const url = `http://127.0.0.1:${port}`;
      await streamChat(url, model, 8); // loads the model: not counted
      const t0 = performance.now();
      const counts = await Promise.all(Array.from({ length: clients }, () => streamChat(url, model, tokens)));
      const secs = (performance.now() - t0) / 1000;
      const total = counts.reduce((a, b) => a + b, 0);
      const agg = total / secs;
      console.log(`mpk api, ${clients} concurrent streaming clients, --parallel ${parallel}: ${total} tokens in ${secs.toFixed(2)} s = ${agg.toFixed(1)} tokens/s aggregate vs direct ${directTps.toFixed(1)} -> ${(agg / directTps).toFixed(2)}x (target >= 0.9x)`);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  }
}
