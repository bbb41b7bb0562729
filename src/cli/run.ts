/**
 * The CLI in-process: `run(argv, io)` → exit code. Commands are loaded on demand, so
 * `mpk --version` loads almost nothing. Errors print as one line with a hint.
 */
import { findPackError, PackError } from '../errors.js';
import { helpText, parseCommand, type CommandSpec, type Ctx, type Io } from './context.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import { VERSION } from '../version.js';

const COMMANDS: Record<string, { summary: string; load: () => Promise<CommandSpec> }> = {
  build: { summary: 'Build a model from a directory (and a Modelfile) into the store', load: async () => (await import('./commands/build.js')).build },
  modelfile: { summary: 'Generate a Modelfile from a model directory (modelfile generate DIR)', load: async () => (await import('./commands/modelfile.js')).modelfileGenerate },
  ls: { summary: 'List the models in the store', load: async () => (await import('./commands/ls.js')).ls },
  inspect: { summary: 'Show a model: manifest, config and files', load: async () => (await import('./commands/inspect.js')).inspect },
  tag: { summary: 'Give a model another name', load: async () => (await import('./commands/tag.js')).tag },
  rm: { summary: 'Remove model references (blobs go with prune)', load: async () => (await import('./commands/rm.js')).rm },
  prune: { summary: 'Delete blobs that no model references', load: async () => (await import('./commands/prune.js')).prune },
  verify: { summary: 'Rehash stored blobs and report corruption', load: async () => (await import('./commands/verify.js')).verify },
  push: { summary: 'Push a model to a registry', load: async () => (await import('./commands/push.js')).push },
  pull: { summary: 'Pull a model from a registry into the store (resumable)', load: async () => (await import('./commands/push.js')).pull },
  copy: { summary: 'Copy a model between registries or repositories', load: async () => (await import('./commands/push.js')).copyCommand },
  tags: { summary: 'List the tags of a repository in a registry', load: async () => (await import('./commands/login.js')).tagsCommand },
  login: { summary: 'Save credentials for a registry (docker config.json)', load: async () => (await import('./commands/login.js')).loginCommand },
  logout: { summary: 'Remove saved credentials for a registry', load: async () => (await import('./commands/login.js')).logoutCommand },
  extract: { summary: "Restore a model's files into a directory", load: async () => (await import('./commands/extract.js')).extract },
  serve: { summary: 'Run an OCI registry (push/pull models with nothing else installed); serve gc, serve verify', load: async () => (await import('./commands/serve.js')).serveCommand },
  import: { summary: "Import a model from Ollama's models directory (hard links, verified)", load: async () => (await import('./commands/interop.js')).importCommand },
  export: { summary: "Export a model to Ollama's models directory for `ollama run`", load: async () => (await import('./commands/interop.js')).exportCommand },
  run: { summary: 'Run a model with llama.cpp: one answer, or a chat (pulls it first if needed)', load: async () => (await import('./commands/run.js')).runCommand },
  api: { summary: "Serve the store's models over an OpenAI-compatible HTTP API (like Docker Model Runner)", load: async () => (await import('./commands/api.js')).apiCommand },
  convert: { summary: 'Convert a model to Docker Model Runner or ModelPack form (same blobs)', load: async () => (await import('./commands/interop.js')).convertCommand },
};

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
  let storeRoot: string | undefined;
  let quiet = false;
  // Global flags before the command.
  while (args.length > 0 && args[0]!.startsWith('-')) {
    const a = args.shift()!;
    if (a === '--version' || a === '-v') {
      io.stdout.write(`mpk ${VERSION}\n`);
      return EXIT.OK;
    }
    if (a === '--help' || a === '-h') {
      io.stdout.write(mainHelp());
      return EXIT.OK;
    }
    if (a === '-q' || a === '--quiet') quiet = true;
    else if (a === '--store' && args.length > 0) storeRoot = args.shift();
    else if (a.startsWith('--store=')) storeRoot = a.slice('--store='.length);
    else return usageError(io, `unknown global option ${a}`, "see 'mpk --help'");
  }
  const name = args.shift();
  if (!name || name === 'help') {
    io.stdout.write(mainHelp());
    return name ? EXIT.OK : EXIT.USAGE;
  }
  if (name === 'version') {
    io.stdout.write(`mpk ${VERSION}\n`);
    return EXIT.OK;
  }
  const entry = COMMANDS[name];
  if (!entry) return usageError(io, `unknown command ${JSON.stringify(name)}`, `commands: ${Object.keys(COMMANDS).join(', ')}`);
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
    return reportError(io, e);
  }
}

function usageError(io: Io, message: string, hint: string): number {
  io.stderr.write(`mpk: ${message}. Hint: ${hint}\n`);
  return EXIT.USAGE;
}

/** One line: `mpk: <message>. Hint: <hint>`; the exit code follows the error code. */
export function reportError(io: Io, e: unknown): number {
  const pe = findPackError(e);
  if (io.signal?.aborted) {
    io.stderr.write('mpk: interrupted\n');
    return EXIT.INTERRUPTED;
  }
  const sys = (e as NodeJS.ErrnoException)?.code ?? '';
  if (!pe && /^(ECONNRESET|EPIPE|ETIMEDOUT|ECONNABORTED|ERR_STREAM_PREMATURE_CLOSE)$/.test(sys)) {
    io.stderr.write(`mpk: connection lost (${(e as Error).message}). Hint: run the command again; transfers resume\n`);
    return EXIT.REMOTE;
  }
  if (!pe) {
    io.stderr.write(`mpk: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
    return EXIT.FAILURE;
  }
  const msg = printable(pe.message.replace(/\s+/g, ' ').replace(/\.$/, ''));
  io.stderr.write(`mpk: ${msg}${pe.hint ? `. Hint: ${printable(pe.hint)}` : ''}\n`);
  return exitCodeFor(pe.code);
}

/** Text that came from a registry may hold terminal escapes or bidi controls: shown as '?'. */
export function printable(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, '?');
}

export { PackError };
