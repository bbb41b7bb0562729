/**
 * The interactive chat of `mpk run` on a terminal, in the manner of `ollama run`: `>>> ` prompts,
 * tokens streamed as they come, history kept across turns. `/bye` or Ctrl-D leaves; Ctrl-C stops
 * the answer being written (not the session), and at an empty prompt says how to leave.
 */
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type { Conversation } from './conversation.js';

export interface ReplIo {
  input: Readable;
  output: { write(s: string): unknown };
  /** A real terminal: line editing, raw-mode Ctrl-C. */
  terminal: boolean;
  /** Aborts the whole session (SIGTERM). */
  signal?: AbortSignal;
  /** A turn that failed (the session goes on). */
  onError?: (e: unknown) => void;
}

const HELP = `Commands:
  /clear   forget the conversation (the system prompt stays)
  /bye     leave (or Ctrl-D)
  /?       this help
Ctrl-C stops an answer.
`;

/** Runs until /bye, end of input or the session signal; resolves with the number of turns. */
export async function chatRepl(conv: Conversation, io: ReplIo): Promise<number> {
  const rl = createInterface({ input: io.input, output: io.terminal ? (io.output as NodeJS.WritableStream) : undefined, terminal: io.terminal, prompt: '>>> ' });
  let answering: AbortController | undefined;
  let turns = 0;
  let closed = false;
  rl.on('SIGINT', () => {
    if (answering) answering.abort(new Error('stopped'));
    else {
      io.output.write('\nUse Ctrl-D or /bye to leave.\n');
      rl.prompt();
    }
  });
  const onSessionAbort = () => rl.close();
  io.signal?.addEventListener('abort', onSessionAbort, { once: true });
  rl.on('close', () => {
    closed = true;
    // Ctrl-D on a terminal also stops the answer; the end of a pipe only ends the input: the
    // lines already read are still answered
    if (io.terminal) answering?.abort(new Error('closed'));
  });
  if (!io.terminal) io.output.write('>>> ');
  else rl.prompt();
  try {
    for await (const raw of rl) {
      const line = raw.trim();
      if (line === '/bye' || line === '/exit') break;
      if (line === '/?' || line === '/help') io.output.write(HELP);
      else if (line === '/clear') {
        conv.clear();
        io.output.write('Cleared the conversation.\n');
      } else if (line.startsWith('/')) io.output.write(`Unknown command ${line.split(/\s/)[0]}; /? lists them.\n`);
      else if (line !== '') {
        answering = new AbortController();
        try {
          const g = await conv.ask(raw, { signal: answering.signal, onText: (t) => void io.output.write(t) });
          if (g.forgotten) io.output.write(`[the ${g.forgotten} oldest turn${g.forgotten > 1 ? 's were' : ' was'} forgotten to fit the context]\n`);
          io.output.write(g.finishReason === 'abort' ? '\n[stopped]\n\n' : '\n\n');
          turns++;
        } catch (e) {
          if (io.signal?.aborted) throw e;
          if (answering.signal.aborted) io.output.write('\n[stopped]\n\n'); // Ctrl-C before the engine began
          else {
            io.output.write('\n');
            io.onError?.(e);
          }
        } finally {
          answering = undefined;
        }
      }
      if (closed && io.terminal) break;
      if (io.terminal) rl.prompt();
      else io.output.write('>>> ');
    }
  } finally {
    io.signal?.removeEventListener('abort', onSessionAbort);
    rl.close();
  }
  if (!io.terminal) io.output.write('\n');
  return turns;
}
