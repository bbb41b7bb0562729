/**
 * The bin entry: the only module that touches `process`. SIGINT/SIGTERM abort the running command
 * (temp files are removed, nothing half-written becomes visible), a second signal exits at once.
 */
import { run } from './run.js';

export async function main(): Promise<void> {
  const ac = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (++signals > 1) process.exit(130);
    ac.abort(new Error(`received ${sig}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const code = await run(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
    signal: ac.signal,
    readStdin: readStdin,
    stdin: process.stdin,
  });
  process.exitCode = code;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
