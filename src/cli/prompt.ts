/**
 * A password read from the terminal without echo, as `docker login` asks for one: the TTY in raw
 * mode, so no key reaches the screen; Enter ends, Backspace and Ctrl-U edit, Ctrl-C (or Ctrl-D on
 * an empty line) cancels. The terminal is always put back as it was.
 */
import { StringDecoder } from 'node:string_decoder';
import { PackError } from '../errors.js';

/** Standard input when it is a terminal that can be put in raw mode. */
export interface TtyInput extends NodeJS.ReadableStream {
  isTTY?: boolean;
  isRaw?: boolean;
  setRawMode(raw: boolean): unknown;
}

export function isTerminal(stdin: (NodeJS.ReadableStream & { isTTY?: boolean }) | undefined): stdin is TtyInput {
  return !!stdin?.isTTY && typeof (stdin as Partial<TtyInput>).setRawMode === 'function';
}

/** Writes `prompt` to `out` (stderr: stdout keeps only results) and reads one line unechoed. */
export function readSecret(stdin: TtyInput, out: { write(s: string): unknown }, prompt: string, signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const wasRaw = !!stdin.isRaw;
    let secret = '';
    const utf8 = new StringDecoder('utf8'); // a character split between two reads stays whole
    let escape = 0; // 1 after ESC, 2 inside a CSI/SS3 sequence (arrow keys and the like): dropped
    const finish = (err: Error | undefined) => {
      stdin.removeListener('data', onData);
      stdin.removeListener('end', onEnd);
      signal?.removeEventListener('abort', onAbort);
      stdin.setRawMode(wasRaw);
      stdin.pause();
      out.write('\n');
      if (err) reject(err);
      else resolve(secret);
    };
    const cancelled = () => new PackError('ABORTED', 'login cancelled', { hint: 'nothing was saved' });
    const onAbort = () => finish(cancelled());
    const onEnd = () => finish(cancelled());
    const onData = (chunk: Buffer | string) => {
      for (const ch of typeof chunk === 'string' ? chunk : utf8.write(chunk)) {
        if (escape === 1) {
          escape = ch === '[' || ch === 'O' ? 2 : 0;
          if (escape === 2) continue;
        }
        if (escape === 2) {
          if (/[A-Za-z~]/.test(ch)) escape = 0;
          continue;
        }
        if (ch === '\r' || ch === '\n') return finish(undefined);
        if (ch === '\x03') return finish(cancelled()); // Ctrl-C
        if (ch === '\x04') {
          if (secret === '') return finish(cancelled()); // Ctrl-D on an empty line: end of input
          continue;
        }
        if (ch === '\x7f' || ch === '\b') secret = [...secret].slice(0, -1).join('');
        else if (ch === '\x15') secret = ''; // Ctrl-U
        else if (ch === '\x1b') escape = 1;
        else if (ch >= ' ') secret += ch;
      }
    };
    if (signal?.aborted) return reject(cancelled());
    stdin.setRawMode(true);
    out.write(prompt);
    stdin.on('data', onData);
    stdin.once('end', onEnd);
    signal?.addEventListener('abort', onAbort, { once: true });
    stdin.resume();
  });
}
