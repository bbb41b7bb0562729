/** readSecret on a stand-in terminal: raw mode on while reading and restored after; keys edited. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { isTerminal, readSecret, type TtyInput } from './prompt.js';

function fakeTty(): TtyInput & { modes: boolean[]; isRaw: boolean } {
  const s = new PassThrough() as unknown as TtyInput & { modes: boolean[]; isRaw: boolean };
  s.isTTY = true;
  s.isRaw = false;
  s.modes = [];
  s.setRawMode = (raw: boolean) => {
    s.modes.push(raw);
    s.isRaw = raw;
    return s;
  };
  return s;
}

async function typed(keys: string[], signal?: AbortSignal): Promise<{ secret?: string; error?: unknown; shown: string; modes: boolean[] }> {
  const tty = fakeTty();
  let shown = '';
  const p = readSecret(tty, { write: (s: string) => (shown += s) }, 'Password: ', signal);
  for (const k of keys) (tty as unknown as PassThrough).write(k);
  try {
    return { secret: await p, shown, modes: tty.modes };
  } catch (error) {
    return { error, shown, modes: tty.modes };
  }
}

test('readSecret: Enter ends; Backspace, Ctrl-U and arrow keys edit; nothing is echoed; raw mode restored', async () => {
  const r = await typed(['pass', 'x\x7f', 'word\x1b[D', '\r']);
  assert.equal(r.secret, 'password');
  assert.equal(r.shown, 'Password: \n');
  assert.deepEqual(r.modes, [true, false]);
  assert.equal((await typed(['wrong\x15right\n'])).secret, 'right');
  assert.equal((await typed(['pässwörd😀\r'])).secret, 'pässwörd😀');
  assert.equal((await typed(['ab😀\x7f\r'])).secret, 'ab', 'Backspace takes back a whole character');
});

test('readSecret: Ctrl-C, Ctrl-D on an empty line and an abort signal cancel with ABORTED (exit 130)', async () => {
  for (const keys of [['sec', '\x03'], ['\x04']]) {
    const r = await typed(keys);
    assert.equal((r.error as { code?: string }).code, 'ABORTED', JSON.stringify(keys));
    assert.deepEqual(r.modes, [true, false]);
  }
  const ac = new AbortController();
  const p = typed(['half'], ac.signal);
  ac.abort();
  assert.equal(((await p).error as { code?: string }).code, 'ABORTED');
});

test('isTerminal: only a TTY that can go raw', () => {
  assert.equal(isTerminal(undefined), false);
  assert.equal(isTerminal(new PassThrough()), false);
  assert.equal(isTerminal(fakeTty()), true);
});

test('readSecret: a character split between two reads stays whole', async () => {
  const tty = fakeTty();
  const p = readSecret(tty, { write: () => true }, '');
  const bytes = Buffer.from('é😀\r');
  for (let i = 0; i < bytes.length; i++) (tty as unknown as PassThrough).write(bytes.subarray(i, i + 1));
  assert.equal(await p, 'é😀');
});
