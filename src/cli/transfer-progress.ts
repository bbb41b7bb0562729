/**
 * Multi-line transfer progress for push, pull and copy, after `docker pull`: on a TTY one row per blob,
 * redrawn in place at most every 100 ms and capped at maxRows rows (so 10,000 blobs stay cheap);
 * in plain logs one line per finished blob; NDJSON for --json; nothing for -q.
 */
import { humanBytes, humanRate, shortDigest } from './format.js';
import type { ProgressSink } from './progress.js';

/** The display shows the copy engine's events as they are. */
export type { CopyEvent as TransferEvent, CopyState as TransferState } from '../graph/copy.js';
import type { CopyEvent as TransferEvent, CopyState as TransferState } from '../graph/copy.js';
export type DisplayMode = 'tty' | 'plain' | 'json' | 'none';
export interface TransferDisplay {
  update(ev: TransferEvent): void;
  /** final redraw + summary line; returns nothing */
  finish(summary: { ok: boolean; message?: string }): void;
}

/** chooses the mode: json flag → json; quiet → none; TTY → tty; else plain */
export function displayModeFor(flags: { json?: boolean; quiet?: boolean }, stderrIsTTY: boolean): DisplayMode {
  return flags.json ? 'json' : flags.quiet ? 'none' : stderrIsTTY ? 'tty' : 'plain';
}

const FRAME_MS = 100;
const JSON_BYTES_MS = 1000;
const WORD_W = 11; // "Downloading"
const ACTIVE = new Set<TransferState>(['uploading', 'downloading', 'resuming', 'verifying']);
const FINAL = new Set<TransferState>(['exists', 'mounted', 'done', 'failed']);

interface Blob {
  ev: TransferEvent; // latest event (title kept from earlier events when a later one omits it)
  dir?: 'up' | 'down';
  last: number; // transfer offset last seen
  rateAt: number; // when the current transfer started, and from which offset
  rateBase: number;
  jsonAt: number; // when its last JSON line was written
  skipped: boolean; // already present (exists/mounted)
}

// Terminal text: registry annotations are untrusted, so control and bidi characters never reach the
// terminal; widths count East Asian wide characters and emoji as two cells so rows never wrap.
const UNSAFE = /[\p{Cc}\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu;
const clean = (s: string) => s.replace(UNSAFE, '?');
const WIDE = /[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6\u{1f300}-\u{1faff}\u{20000}-\u{3fffd}]/u;
const ZERO = /[\p{M}\u200b-\u200d\ufe0f]/u;
const cellW = (ch: string) => (ZERO.test(ch) ? 0 : WIDE.test(ch) ? 2 : 1);
const width = (s: string) => [...s].reduce((w, ch) => w + cellW(ch), 0);
/** Cuts s to at most w cells, marking the cut with '…' (at the start when keepEnd, for paths). */
function fit(s: string, w: number, keepEnd = false): string {
  if (width(s) <= w) return s;
  if (w <= 0) return '';
  const chars = [...s];
  if (keepEnd) chars.reverse();
  let out = '';
  let used = 1;
  for (const ch of chars) {
    if (used + cellW(ch) > w) break;
    used += cellW(ch);
    out = keepEnd ? ch + out : out + ch;
  }
  return keepEnd ? '…' + out : out + '…';
}
const pad = (s: string, w: number, keepEnd = false) => ((f) => f + ' '.repeat(Math.max(0, w - width(f))))(fit(s, w, keepEnd));
const count = (n: number) => n.toLocaleString('en-US');
const cap = (s: string) => s[0]!.toUpperCase() + s.slice(1);

/** `=====>     `, all `=` when complete. */
function bar(frac: number, w: number): string {
  if (frac >= 1) return '='.repeat(w);
  const n = Math.min(w - 1, Math.floor(Math.max(0, frac) * w));
  return '='.repeat(n) + '>' + ' '.repeat(w - n - 1);
}

export function createTransferDisplay(
  out: ProgressSink,
  mode: DisplayMode,
  opts: { label?: string; now?: () => number; jsonOut?: { write(s: string): unknown }; maxRows?: number } = {},
): TransferDisplay {
  const now = opts.now ?? Date.now;
  const started = now();
  const jsonOut = opts.jsonOut ?? out;
  const termRows = (out as { rows?: number }).rows;
  const maxRows = Math.max(1, Math.floor(opts.maxRows ?? Math.min(termRows ? termRows - 3 : 20, 20)));
  const blobs = new Map<string, Blob>();
  let moved = 0; // bytes moved in this run (not skipped blobs, not a resumed prefix)
  let finished = false;
  let headerDone = false;
  let drawn = 0; // rows of the last frame, above the cursor
  let lastDraw = -Infinity;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const cols = () => Math.max(20, out.columns ?? 100);
  const header = () => {
    if (headerDone || !opts.label || (mode !== 'tty' && mode !== 'plain')) return;
    headerDone = true;
    out.write(`${mode === 'tty' ? fit(clean(opts.label), cols() - 1) : clean(opts.label)}\n`);
  };
  const plainName = (e: TransferEvent) => {
    const d = e.digest.slice(0, e.digest.indexOf(':') + 13);
    return e.title ? `${d} ${clean(e.title)}` : d;
  };

  function row(b: Blob, titleW: number, barW: number, t: number): string {
    const e = b.ev;
    const head = `${shortDigest(e.digest)}  ${titleW > 0 ? pad(clean(e.title ?? ''), titleW, true) + '  ' : ''}`;
    let word: string;
    let frac: number | undefined;
    let amt = '';
    let rate = '';
    const amounts = (n: number, padSize = false) => `${humanBytes(n).padStart(9)}/${humanBytes(e.size).padEnd(padSize ? 9 : 0)}`;
    switch (e.state) {
      case 'waiting': word = 'Waiting'; break;
      case 'exists': word = 'Already exists'; break;
      case 'mounted': word = 'Mounted'; break;
      case 'failed': word = `Failed: ${clean(e.error ?? 'unknown error')}`; break;
      case 'done': [word, amt] = [b.dir === 'up' ? 'Pushed' : b.dir === 'down' ? 'Pulled' : 'Done', humanBytes(e.size)]; break;
      case 'resuming':
        word = `Resuming (from ${humanBytes(b.last)})`;
        frac = e.size > 0 ? b.last / e.size : 1;
        amt = amounts(b.last);
        break;
      case 'verifying':
        word = 'Verifying';
        if (e.bytes !== undefined) [frac, amt] = [e.size > 0 ? e.bytes / e.size : 1, amounts(e.bytes)];
        break;
      default: // uploading, downloading
        word = cap(e.state);
        frac = e.size > 0 ? b.last / e.size : 1;
        amt = amounts(b.last, true);
        rate = humanRate(b.last - b.rateBase, t - b.rateAt);
    }
    if (amt || frac !== undefined) word = word.padEnd(WORD_W);
    // Narrow terminals lose the bar first, then the rate, then the amounts.
    const room = cols() - 1 - width(head) - width(word);
    const tails = rate ? [`${amt}  ${rate}`, amt.trimEnd()] : [amt];
    for (const tail of tails) {
      for (const withBar of frac === undefined ? [false] : [true, false]) {
        const tw = tail ? width(tail) + 2 : 0;
        const bw = Math.min(barW, room - tw - 3);
        if (withBar ? bw < 5 : tw > room) continue;
        return head + word + (withBar ? ` [${bar(frac!, bw)}]` : '') + (tail ? `  ${tail}` : '');
      }
    }
    return fit(head + word.trimEnd(), cols() - 1);
  }

  function frame(t: number): string[] {
    let shown = [...blobs.values()];
    let hidden: Blob[] = [];
    if (shown.length > maxRows) {
      // In-flight first, then failures, then what comes next, then what is finished.
      const ranked: Blob[][] = [[], [], [], []];
      for (const b of shown) {
        const s = b.ev.state;
        ranked[ACTIVE.has(s) ? 0 : s === 'failed' ? 1 : s === 'waiting' ? 2 : 3]!.push(b);
      }
      const all = ranked.flat();
      shown = all.slice(0, maxRows - 1);
      hidden = all.slice(maxRows - 1);
    }
    let titleW = 0;
    for (const b of shown) if (b.ev.title) titleW = Math.max(titleW, width(clean(b.ev.title)));
    titleW = Math.min(titleW, 24, Math.floor((cols() - 15) * 0.3));
    // One bar width for the frame, sized for the longest usual row: word, bar, amounts and rate.
    const barW = Math.min(30, cols() - 1 - 14 - (titleW ? titleW + 2 : 0) - WORD_W - 3 - 21 - 13);
    const rows = shown.map((b) => row(b, titleW, barW, t));
    if (hidden.length) {
      const n = { done: 0, present: 0, failed: 0, active: 0, waiting: 0 };
      for (const b of hidden) {
        const s = b.ev.state;
        n[s === 'done' ? 'done' : s === 'exists' || s === 'mounted' ? 'present' : s === 'failed' ? 'failed' : s === 'waiting' ? 'waiting' : 'active']++;
      }
      const parts = ([[n.done, 'done'], [n.present, 'already present'], [n.failed, 'failed'], [n.active, 'in progress'], [n.waiting, 'waiting']] as const)
        .filter(([k]) => k > 0).map(([k, what]) => `${count(k)} ${what}`);
      rows.push(fit(`… ${count(hidden.length)} more: ${parts.join(', ')}`, cols() - 1));
    }
    return rows;
  }

  function draw(t: number): void {
    clearTimeout(timer);
    timer = undefined;
    lastDraw = t;
    const rows = frame(t);
    if (!rows.length) return;
    header();
    const up = drawn > 0 ? `\x1b[${drawn}A\r` : '';
    out.write(up + rows.map((r) => `${r}\x1b[K\n`).join('') + (drawn > rows.length ? '\x1b[J' : ''));
    drawn = rows.length;
  }

  function schedule(t: number): void {
    if (t - lastDraw >= FRAME_MS) return draw(t);
    if (timer) return;
    timer = setTimeout(() => draw(now()), Math.max(0, FRAME_MS - (t - lastDraw)));
    timer.unref?.();
  }

  function update(ev: TransferEvent): void {
    if (finished || mode === 'none') return;
    const t = now();
    const known = blobs.get(ev.digest);
    if (known?.skipped && ev.state === 'done') return; // already present stays that way
    const prev = known?.ev.state;
    const b: Blob = known ?? { ev, last: 0, rateAt: t, rateBase: 0, jsonAt: -Infinity, skipped: false };
    if (!known) blobs.set(ev.digest, b);
    else b.ev = ev.title === undefined && b.ev.title !== undefined ? { ...ev, title: b.ev.title } : ev;
    const s = ev.state;
    if (s === 'exists' || s === 'mounted') b.skipped = true;
    else if (s === 'resuming') [b.last, b.rateBase, b.rateAt] = [ev.bytes ?? 0, ev.bytes ?? 0, t];
    else if (s === 'uploading' || s === 'downloading') {
      b.dir = s === 'uploading' ? 'up' : 'down';
      if (prev !== 'uploading' && prev !== 'downloading' && prev !== 'resuming') [b.rateAt, b.rateBase] = [t, ev.bytes ?? 0];
      if (ev.bytes !== undefined) {
        if (ev.bytes > b.last) moved += ev.bytes - b.last;
        b.last = ev.bytes; // a smaller offset is a restart: nothing moved
      }
    } else if (s === 'done') {
      if (b.last < ev.size) moved += ev.size - b.last;
      b.last = ev.size;
    }

    if (mode === 'json') {
      if (s !== prev || (ev.bytes !== undefined && t - b.jsonAt >= JSON_BYTES_MS)) {
        b.jsonAt = t;
        const { digest, mediaType, size, title, bytes, error } = b.ev;
        jsonOut.write(JSON.stringify({ event: 'blob', digest, mediaType, size, title, state: s, bytes, error }) + '\n');
      }
    } else if (mode === 'plain') {
      if (s === prev) return;
      let what: string | undefined;
      if (s === 'resuming') what = `resuming at ${humanBytes(b.last)}`;
      else if (FINAL.has(s) && !(prev && FINAL.has(prev))) {
        what = s === 'exists' ? 'already exists' : s === 'mounted' ? 'mounted'
          : s === 'failed' ? `failed: ${clean(ev.error ?? 'unknown error')}`
          : `${b.dir === 'up' ? 'pushed' : b.dir === 'down' ? 'pulled' : 'done'} ${humanBytes(ev.size)}`;
      }
      if (what) header(), out.write(`${plainName(b.ev)}: ${what}\n`);
    } else schedule(t);
  }

  function finish(summary: { ok: boolean; message?: string }): void {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    if (mode === 'none') return;
    const t = now();
    const ms = t - started;
    let done = 0, skipped = 0, failed = 0;
    for (const b of blobs.values()) {
      if (b.skipped) skipped++;
      else if (b.ev.state === 'done') done++;
      else if (b.ev.state === 'failed') failed++;
    }
    if (mode === 'json') {
      const s: Record<string, unknown> = { event: 'summary', ok: summary.ok, blobs: done, bytes: moved, skipped, failed, seconds: Math.round(ms) / 1000 };
      if (summary.message !== undefined) s.message = summary.message;
      jsonOut.write(JSON.stringify(s) + '\n');
      return;
    }
    if (mode === 'tty') draw(t);
    // A failure before any blob failed (auth, a missing tag, a local error) is told once, by the
    // error line itself: no "Failed: 0 of 0 blobs failed" (nor a lone header) before it.
    const line = summary.ok
      ? `Done: ${count(done)} blob${done === 1 ? '' : 's'}, ${humanBytes(moved)} in ${(ms / 1000).toFixed(1)} s (${humanRate(moved, ms)})${skipped ? `; ${count(skipped)} already present` : ''}`
      : (summary.message ?? (failed > 0 ? `Failed: ${count(failed)} of ${count(blobs.size)} blob${blobs.size === 1 ? '' : 's'} failed` : undefined));
    if (line === undefined) return;
    header();
    out.write(line + '\n');
    if (summary.ok && summary.message) out.write(summary.message + '\n');
  }

  return { update, finish };
}
