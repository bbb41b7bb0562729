/**
 * The bin entry: the only module that touches `process`. SIGINT/SIGTERM abort the running command
 * (temp files are removed, nothing half-written becomes visible), a second signal exits at once.
 *
 * A reader that leaves (`mpk inspect REF | head -2`, `mpk pull REF --json | head -1`) ends mpk as
 * it ends ls or git: quietly, nothing on stderr, with the status a shell shows for them (141,
 * 128 + SIGPIPE). Node ignores SIGPIPE, so mpk sees EPIPE instead and does the same by hand: the
 * running command is aborted (a pull keeps its partial files for the next run) and nothing more
 * is printed. 141 rather than 0: under `set -o pipefail` a script sees what it sees for ls, and a
 * pull cut short is never reported as done.
 */
import { run } from './run.js';

/** 128 + SIGPIPE (13): what a shell reports for a writer whose reader left. */
export const EXIT_PIPE = 141;
const EXIT_IO = 5;

export async function main(): Promise<void> {
  const ac = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (++signals > 1) process.exit(130);
    ac.abort(new Error(`received ${sig}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let outputGone: number | undefined; // the exit code once stdout or stderr failed
  const onWriteError = (stream: 'stdout' | 'stderr') => (e: NodeJS.ErrnoException) => {
    if (outputGone !== undefined) return;
    outputGone = e?.code === 'EPIPE' ? EXIT_PIPE : EXIT_IO;
    if (outputGone === EXIT_IO && stream === 'stdout') process.stderr.write(`mpk: cannot write to standard output: ${e?.message ?? e}\n`);
    process.exitCode = outputGone;
    ac.abort(new Error(`${stream} closed`));
  };
  process.stdout.on('error', onWriteError('stdout'));
  process.stderr.on('error', onWriteError('stderr'));
  // Once the output is gone, the command's last words ("interrupted") have no one to read them.
  const stderr = {
    write: (s: string) => (outputGone === undefined ? process.stderr.write(s) : true),
    get isTTY() {
      return process.stderr.isTTY;
    },
    get columns() {
      return process.stderr.columns;
    },
    get rows() {
      return process.stderr.rows;
    },
  };

  const code = await run(process.argv.slice(2), {
    stdout: process.stdout,
    stderr,
    env: process.env,
    cwd: process.cwd(),
    signal: ac.signal,
    readStdin: readStdin,
    stdin: process.stdin,
  });
  process.exitCode = outputGone ?? code;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
