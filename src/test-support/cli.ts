/** Runs the CLI in-process with captured output (the regctl cobraTest pattern). */
import { run } from '../cli/run.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function mpk(env: NodeJS.ProcessEnv, cwd: string, ...argv: string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await run(argv, {
    stdout: { write: (s: string) => (stdout += s), isTTY: false },
    stderr: { write: (s: string) => (stderr += s), isTTY: false },
    env,
    cwd,
  });
  return { code, stdout, stderr };
}
