/** What a command gets: its streams, environment and parsed flags; nothing touches `process`. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { PackError } from '../errors.js';
import type { ProgressSink } from './progress.js';
import { closest } from './suggest.js';

export interface Io {
  stdout: { write(s: string): unknown; isTTY?: boolean };
  stderr: ProgressSink;
  env: NodeJS.ProcessEnv;
  cwd: string;
  signal?: AbortSignal;
  /** Reads all of standard input (for `-f -`). */
  readStdin?: () => Promise<string>;
  /** Standard input as a stream (the chat of `mpk run`); isTTY on a terminal. */
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
}

export interface Ctx extends Io {
  /** -q: no progress and only essential output. */
  quiet: boolean;
  /** NO_COLOR or not a TTY. */
  color: boolean;
  /** Store root from --store or MPK_HOME. */
  storeRoot: string | undefined;
  /** Warnings go to stderr, one line each. */
  warn(msg: string): void;
  /** Whether to draw progress bars. */
  progress: boolean;
}

export type Options = NonNullable<ParseArgsConfig['options']>;

export interface CommandSpec {
  name: string;
  usage: string;
  summary: string;
  /** Lines of option help, already formatted. */
  help: string[];
  options: Options;
  /** Allowed positional count [min, max]. */
  args: [number, number];
  run(ctx: Ctx, values: Record<string, unknown>, positionals: string[]): Promise<number>;
}

/**
 * Parses one command's arguments; unknown flags or wrong counts are USAGE errors with a hint (the
 * nearest option for a mistyped one). Messages start with the command's name: `build: …`.
 */
export function parseCommand(spec: CommandSpec, argv: string[]): { values: Record<string, unknown>; positionals: string[] } {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: spec.options, allowPositionals: true, strict: true });
  } catch (e) {
    const raw = (e as Error).message.replace(/\. To specify a positional argument.*$/s, '');
    const msg = raw.charAt(0).toLowerCase() + raw.slice(1);
    const unknown = /^Unknown option '--([^'=]+)/.exec(raw)?.[1];
    const guess = unknown ? closest(unknown, Object.keys(spec.options)) : undefined;
    throw new PackError('USAGE', `${spec.name}: ${msg}`, { hint: `${guess ? `did you mean --${guess}? ` : ''}usage: ${spec.usage} (see mpk ${spec.name} --help)` });
  }
  const [min, max] = spec.args;
  const n = parsed.positionals.length;
  if (n < min || n > max) {
    const want = min === max ? `${min}` : max === Infinity ? `at least ${min}` : `${min} to ${max}`;
    throw new PackError('USAGE', `${spec.name}: expected ${want} argument${(max === Infinity ? min : max) === 1 ? '' : 's'}, got ${n}`, { hint: `usage: ${spec.usage}` });
  }
  return { values: parsed.values as Record<string, unknown>, positionals: parsed.positionals };
}

export function helpText(spec: CommandSpec): string {
  return `Usage: ${spec.usage}\n\n${spec.summary}\n${spec.help.length ? `\nOptions:\n${spec.help.map((l) => `  ${l}`).join('\n')}\n` : ''}`;
}

/** Common flags every listing command takes. */
export const JSON_FLAG: Options = { json: { type: 'boolean' } };
export const QUIET_FLAG: Options = { quiet: { type: 'boolean', short: 'q' } };

export function strings(v: unknown): string[] {
  return v === undefined ? [] : Array.isArray(v) ? (v as string[]) : [v as string];
}
