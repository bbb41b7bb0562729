/**
 * The CLI in-process: `run(argv, io)` → exit code. Commands are loaded on demand (commands-table.ts),
 * so `mpk --version` loads almost nothing. Errors print as one line with a hint (JSON with --json).
 */
import { findPackError, ModelfileSyntaxError, PackError } from '../errors.js';
import { COMMANDS, GLOBAL_FLAGS, type CommandEntry } from './commands-table.js';
import { helpText, parseCommand, type Ctx, type Io } from './context.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import { closest } from './suggest.js';
import { VERSION } from '../version.js';

function mainHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  const lines = Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(width)}  ${c.summary}`);
  return `mpk ${VERSION}: package AI models as OCI artifacts (CNCF ModelPack)

Usage: mpk [--store DIR] COMMAND [OPTIONS]

Commands:
${lines.join('\n')}

Global options:
  --store DIR    the local store (default $MPK_HOME, else ~/.mpk)
  -q, --quiet    no progress, only essential output
  -h, --help     help for mpk or a command
  -v, --version  print the version

Run 'mpk COMMAND --help' for a command's options.
`;
}

export async function run(argv: string[], io: Io): Promise<number> {
  const args = [...argv];
  const json = wantsJson(argv);
  let storeRoot: string | undefined;
  let quiet = false;
  // Global flags before the command.
  while (args.length > 0 && args[0]!.startsWith('-')) {
    const a = args.shift()!;
    if (a === '--version' || a === '-v') {
      io.stdout.write(json ? `${JSON.stringify({ version: VERSION })}\n` : `mpk ${VERSION}\n`);
      return EXIT.OK;
    }
    if (a === '--help' || a === '-h') {
      io.stdout.write(mainHelp());
      return EXIT.OK;
    }
    if (a === '-q' || a === '--quiet') quiet = true;
    else if (a === '--store' && args.length > 0) storeRoot = args.shift();
    else if (a.startsWith('--store=')) storeRoot = a.slice('--store='.length);
    else {
      const long = GLOBAL_FLAGS.filter((f) => f.startsWith('--')).map((f) => f.slice(2));
      const guess = a.startsWith('--') ? closest(a.slice(2).replace(/=.*$/, ''), long) : undefined;
      return reportError(io, new PackError('USAGE', `unknown global option ${a}`, { hint: `${guess ? `did you mean --${guess}? ` : ''}see 'mpk --help'` }), json);
    }
  }
  const name = args.shift();
  if (!name || name === 'help') {
    const about = name && args[0] !== undefined ? commandEntry(args[0]) : undefined;
    io.stdout.write(about ? helpText(await about.load()) : mainHelp());
    return name ? EXIT.OK : EXIT.USAGE;
  }
  if (name === 'version') {
    io.stdout.write(json ? `${JSON.stringify({ version: VERSION })}\n` : `mpk ${VERSION}\n`);
    return EXIT.OK;
  }
  const entry = commandEntry(name);
  if (!entry) {
    const guess = closest(name, Object.keys(COMMANDS));
    const hint = guess ? `did you mean ${guess}?` : `commands: ${Object.keys(COMMANDS).join(', ')}`;
    return reportError(io, new PackError('USAGE', `unknown command ${JSON.stringify(name)}`, { hint }), json);
  }
  const spec = await entry.load();
  if (args.includes('--help') || args.includes('-h')) {
    io.stdout.write(helpText(spec));
    return EXIT.OK;
  }
  const color = !io.env.NO_COLOR && !!io.stdout.isTTY;
  const ctx: Ctx = {
    ...io,
    quiet,
    color,
    storeRoot: storeRoot ?? (io.env.MPK_HOME || undefined),
    progress: !quiet && !!io.stderr.isTTY,
    warn: (msg) => void io.stderr.write(`mpk: warning: ${msg}\n`),
  };
  try {
    const { values, positionals } = parseCommand(spec, args);
    if (values.quiet) {
      ctx.quiet = true;
      ctx.progress = false;
    }
    return await spec.run(ctx, values, positionals);
  } catch (e) {
    return reportError(io, e, json);
  }
}

/** The command of that name; never one of Object's own properties (`mpk constructor`). */
function commandEntry(name: string): CommandEntry | undefined {
  return Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
}

/** `--json` anywhere before `--`: the command's errors are printed as JSON too. */
function wantsJson(argv: string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes('--json');
}

/** What an error tells its reader: mpk's code, the text, what to do, the exit code. */
export interface ErrorReport {
  code: string;
  message: string;
  hint?: string;
  exit: number;
  /** A Modelfile error's position. */
  file?: string;
  line?: number;
  column?: number;
}

export function describeError(io: Io, e: unknown): ErrorReport {
  if (io.signal?.aborted) return { code: 'ABORTED', message: 'interrupted', exit: EXIT.INTERRUPTED };
  const pe = findPackError(e);
  const sys = (e as NodeJS.ErrnoException)?.code ?? '';
  if (!pe && /^(ECONNRESET|EPIPE|ETIMEDOUT|ECONNABORTED|ERR_STREAM_PREMATURE_CLOSE)$/.test(sys)) {
    return { code: 'NETWORK', message: `connection lost (${printable((e as Error).message)})`, hint: 'run the command again; transfers resume', exit: EXIT.REMOTE };
  }
  if (!pe) return { code: 'INTERNAL', message: `internal error: ${(e as Error)?.stack ?? String(e)}`, exit: EXIT.FAILURE };
  // `mpk build: …` from a command would print as `mpk: mpk build: …`: the command's name is kept once.
  const message = printable(pe.message.replace(/\s+/g, ' ').replace(/\.$/, '').replace(/^mpk ([a-z][a-z-]*): /, '$1: '));
  const r: ErrorReport = { code: pe.code, message, ...(pe.hint ? { hint: printable(pe.hint) } : {}), exit: exitCodeFor(pe.code) };
  if (pe instanceof ModelfileSyntaxError) Object.assign(r, { file: pe.file, line: pe.line, column: pe.column });
  return r;
}

/**
 * One line on stderr: `mpk: <message>. Hint: <hint>`, or with --json
 * `{"error":{"code":…,"message":…,"hint":…,"exit":…}}` (stderr too, as docker and oras print errors:
 * stdout holds only results, so `mpk ls --json | jq` never reads an error as a result, and a pipe
 * of NDJSON progress events is never cut by one). The exit code follows the error code.
 */
export function reportError(io: Io, e: unknown, json = false): number {
  const r = describeError(io, e);
  if (json) io.stderr.write(`${JSON.stringify({ error: r })}\n`);
  else io.stderr.write(`mpk: ${r.message}${r.hint ? `. Hint: ${r.hint}` : ''}\n`);
  return r.exit;
}

/** Text that came from a registry may hold terminal escapes or bidi controls: shown as '?'. */
export function printable(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, '?');
}

export { PackError };
