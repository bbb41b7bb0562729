/** Runs the CLI in-process with captured output (the regctl cobraTest pattern). */
import { run } from '../cli/run.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function mpk(env: NodeJS.ProcessEnv, cwd: string, ...argv: string[]): Promise<CliResult> {
  return mpkWith({ env, cwd }, ...argv);
}

/** The same, with standard input given as text (`--password-stdin`, `-f -`); no terminal. */
export async function mpkWith(o: { env: NodeJS.ProcessEnv; cwd?: string; stdin?: string }, ...argv: string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await run(argv, {
    stdout: { write: (s: string) => (stdout += s), isTTY: false },
    stderr: { write: (s: string) => (stderr += s), isTTY: false },
    env: o.env,
    cwd: o.cwd ?? '/',
    ...(o.stdin === undefined ? {} : { readStdin: async () => o.stdin! }),
  });
  return { code, stdout, stderr };
}
