import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTransferDisplay, displayModeFor, type DisplayMode, type TransferEvent } from './transfer-progress.js';

const MiB = 1 << 20;
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;

function sink(columns = 100, rows = 40) {
  const writes: string[] = [];
  return { writes, columns, rows, isTTY: true, write: (s: string) => writes.push(s), text: () => writes.join('') };
}
function setup(mode: DisplayMode, o: { columns?: number; maxRows?: number; label?: string } = {}) {
  const out = sink(o.columns);
  const json: string[] = [];
  const clock = { t: 0 };
  const d = createTransferDisplay(out, mode, {
    now: () => clock.t,
    maxRows: o.maxRows,
    label: o.label,
    jsonOut: { write: (s: string) => json.push(s) },
  });
  return { out, json, clock, d };
}
const dg = (i: number) => `sha256:${i.toString(16).padStart(64, '0')}`;
const ev = (i: number, state: TransferEvent['state'], extra: Partial<TransferEvent> = {}): TransferEvent => ({
  digest: dg(i), mediaType: 'application/vnd.cncf.model.weight.v1.raw', size: 2048 * MiB, state, ...extra,
});
/** The visible rows of each frame written (one write per frame). */
const frameRows = (w: string) => w.replace(ANSI, '').replace(/\r/g, '').split('\n').slice(0, -1);

test('tty: redraws in place with cursor-up, and no row reaches the last column', () => {
  const { out, clock, d } = setup('tty', { columns: 60 });
  const long = 'very/long/directory/name/that/keeps/going/model-00001-of-00004.safetensors';
  for (let i = 0; i < 3; i++) d.update(ev(i, 'waiting', { title: long }));
  clock.t = 200;
  d.update(ev(0, 'downloading', { title: long, bytes: 0 }));
  clock.t = 1200;
  d.update(ev(0, 'downloading', { title: long, bytes: 512 * MiB }));
  d.finish({ ok: true });
  assert.ok(!out.writes[0]!.includes('\x1b[3A'), 'first frame does not move up');
  assert.ok(out.writes[1]!.startsWith('\x1b[1A\r'), 'the next frame moves up over the 1 row drawn');
  assert.ok(out.writes[2]!.startsWith('\x1b[3A\r'), 'later frames move up over the previous 3 rows');
  const last = frameRows(out.writes[2]!);
  assert.equal(last[0], '000000000000  ….safetensors  Downloading  512.0 MiB/2.0 GiB', 'narrow: bar and rate dropped');
  for (const w of out.writes) for (const r of frameRows(w)) assert.ok(r.length <= 59, `row too long (${r.length}): ${r}`);

  const wide = setup('tty', { columns: 100 });
  wide.d.update(ev(0, 'downloading', { title: long, bytes: 0 }));
  wide.clock.t = 1000;
  wide.d.finish({ ok: true });
  const row = frameRows(wide.out.writes.at(-2)!)[0]!;
  assert.ok(row.length <= 99);
  assert.match(row, /^000000000000  …\S{23}  Downloading \[>\s+\]\s+0 B\/2\.0 GiB +0 B\/s$/);
});

test('tty: untrusted titles cannot inject escape sequences', () => {
  const { out, d } = setup('tty');
  d.update(ev(1, 'waiting', { title: 'evil\x1b[2J\x1b]0;pwned\x07.bin' }));
  d.finish({ ok: true });
  assert.ok(!out.text().includes('\x1b[2J'));
  assert.ok(!out.text().includes('\x07'));
});

test('tty: many updates within 100 ms give one frame; the next frame shows the latest state', () => {
  const { out, clock, d } = setup('tty');
  d.update(ev(1, 'uploading', { bytes: 0 }));
  for (let i = 1; i <= 99; i++) {
    clock.t = i;
    d.update(ev(1, 'uploading', { bytes: i * MiB }));
  }
  assert.equal(out.writes.length, 1);
  clock.t = 100;
  d.update(ev(1, 'uploading', { bytes: 100 * MiB }));
  assert.equal(out.writes.length, 2);
  assert.match(out.writes[1]!, /100\.0 MiB\/2\.0 GiB/);
  clock.t = 150;
  d.update(ev(1, 'done'));
  assert.equal(out.writes.length, 2, 'the final state waits for the next frame');
  d.finish({ ok: true });
  assert.match(out.writes[2]!, /Pushed/);
});

test('tty: 10,000 blobs stay within maxRows, in-flight first, with a summary row', () => {
  const { out, clock, d } = setup('tty', { maxRows: 10 });
  let updates = 0;
  const step = (e: TransferEvent) => { clock.t += 1; updates++; d.update(e); };
  for (let i = 0; i < 10_000; i++) step(ev(i, 'waiting', { size: 1000 }));
  for (let i = 0; i < 9_800; i++) step(ev(i, 'done', { size: 1000 }));
  for (let i = 9_800; i < 9_850; i++) step(ev(i, 'downloading', { size: 1000, bytes: 10 }));
  clock.t += 1000;
  d.update(ev(9_800, 'downloading', { size: 1000, bytes: 20 }));
  assert.ok(out.writes.length <= updates / 50, `${out.writes.length} frames for ${updates} updates`);
  for (const w of out.writes) assert.ok(frameRows(w).length <= 10);
  const last = frameRows(out.writes.at(-1)!);
  assert.equal(last.length, 10);
  for (const r of last.slice(0, 9)) assert.match(r, /Downloading/);
  assert.equal(last[9], '… 9,991 more: 9,800 done, 41 in progress, 150 waiting');
});

test('plain: no escape codes, one line per finished blob, a line on resume, no byte progress', () => {
  const { out, clock, d } = setup('plain', { label: 'Pulling localhost:5000/m:v1' });
  d.update(ev(1, 'waiting', { title: 'config.json', size: 100 }));
  d.update(ev(2, 'resuming', { title: 'model.safetensors', bytes: 512 * MiB }));
  d.update(ev(2, 'resuming', { bytes: 512 * MiB })); // repeated: still one line
  for (let b = 600; b <= 2048; b += 100) d.update(ev(2, 'downloading', { title: 'model.safetensors', bytes: b * MiB }));
  d.update(ev(2, 'verifying', { bytes: 1 }));
  d.update(ev(2, 'done'));
  d.update(ev(1, 'exists', { title: 'config.json', size: 100 }));
  d.update(ev(3, 'mounted', { size: 5 }));
  d.update(ev(3, 'mounted', { size: 5 }));
  d.update(ev(4, 'uploading', { bytes: 5 }));
  d.update(ev(4, 'failed', { error: 'connection reset' }));
  clock.t = 1000;
  d.finish({ ok: false, message: 'mpk: pull failed: 1 blob failed' });
  assert.ok(!out.text().includes('\x1b'));
  assert.deepEqual(out.text().split('\n'), [
    'Pulling localhost:5000/m:v1',
    'sha256:000000000000 model.safetensors: resuming at 512.0 MiB',
    'sha256:000000000000 model.safetensors: pulled 2.0 GiB',
    'sha256:000000000000 config.json: already exists',
    'sha256:000000000000: mounted',
    'sha256:000000000000: failed: connection reset',
    'mpk: pull failed: 1 blob failed',
    '',
  ]);
});

test('json: one line per state change; byte updates at most once a second per blob', () => {
  const { out, json, clock, d } = setup('json');
  d.update(ev(1, 'downloading', { title: 'w.bin', bytes: 0 }));
  d.update(ev(2, 'downloading', { bytes: 0 }));
  for (clock.t = 100; clock.t <= 2500; clock.t += 100) {
    d.update(ev(1, 'downloading', { bytes: clock.t * 1000 }));
    d.update(ev(2, 'downloading', { bytes: clock.t * 1000 }));
  }
  d.update(ev(1, 'done'));
  d.finish({ ok: true });
  assert.equal(out.writes.length, 0, 'json goes to jsonOut');
  const lines = json.map((l) => JSON.parse(l) as Record<string, unknown>);
  const of1 = lines.filter((l) => l.digest === dg(1));
  assert.deepEqual(of1.map((l) => [l.state, l.bytes]), [['downloading', 0], ['downloading', 1_000_000], ['downloading', 2_000_000], ['done', undefined]]);
  assert.deepEqual(of1[0], { event: 'blob', digest: dg(1), mediaType: ev(1, 'done').mediaType, size: 2048 * MiB, title: 'w.bin', state: 'downloading', bytes: 0 });
  assert.equal(lines.filter((l) => l.digest === dg(2)).length, 3);
  assert.equal(lines.at(-1)!.event, 'summary');
  assert.ok(json.every((l) => l.endsWith('\n') && !l.slice(0, -1).includes('\n')));
});

test('finish: counts transferred blobs, bytes moved this run (not a resumed prefix) and skipped ones', () => {
  const run = (mode: DisplayMode) => {
    const s = setup(mode);
    const { clock, d } = s;
    d.update(ev(1, 'uploading', { size: 1000, bytes: 0 }));
    d.update(ev(1, 'uploading', { size: 1000, bytes: 700 }));
    d.update(ev(1, 'done', { size: 1000 }));
    d.update(ev(2, 'resuming', { size: 1000, bytes: 400 }));
    d.update(ev(2, 'uploading', { size: 1000, bytes: 900 }));
    d.update(ev(2, 'done', { size: 1000 }));
    d.update(ev(3, 'exists', { size: 1000 }));
    d.update(ev(3, 'done', { size: 1000 }));
    d.update(ev(4, 'mounted', { size: 1000 }));
    d.update(ev(5, 'waiting', { size: 50 }));
    d.update(ev(5, 'done', { size: 50 }));
    clock.t = 2000;
    d.finish({ ok: true });
    return s;
  };
  const tty = run('tty').out.text().split('\n');
  assert.equal(tty.at(-2), 'Done: 3 blobs, 1.6 KiB in 2.0 s (825 B/s); 2 already present');
  const sum = JSON.parse(run('json').json.at(-1)!);
  assert.deepEqual(sum, { event: 'summary', ok: true, blobs: 3, bytes: 1650, skipped: 2, failed: 0, seconds: 2 });
});

test('failed: the row shows the error and finish prints the failure message', () => {
  const { out, clock, d } = setup('tty');
  d.update(ev(1, 'uploading', { title: 'model.safetensors', bytes: 10 }));
  clock.t = 500;
  d.update(ev(1, 'failed', { title: 'model.safetensors', error: 'registry said 500\nInternal' }));
  d.finish({ ok: false, message: 'mpk: push failed' });
  const last = frameRows(out.writes.at(-2)!);
  assert.equal(last[0], '000000000000  model.safetensors  Failed: registry said 500?Internal');
  assert.equal(out.writes.at(-1), 'mpk: push failed\n');

  const j = setup('json');
  j.d.update(ev(1, 'failed', { error: 'boom' }));
  j.d.finish({ ok: false, message: 'push failed' });
  assert.equal(JSON.parse(j.json[0]!).error, 'boom');
  assert.deepEqual(JSON.parse(j.json[1]!), { event: 'summary', ok: false, blobs: 0, bytes: 0, skipped: 0, failed: 1, seconds: 0, message: 'push failed' });
});

test('a failure before any blob failed prints no summary (the error line says it); one that did names the count', () => {
  for (const mode of ['plain', 'tty'] as const) {
    const early = setup(mode, { label: 'Pulling localhost:5000/m:1' });
    early.d.finish({ ok: false });
    assert.deepEqual(early.out.writes, [], `${mode}: nothing before the error (no "Failed: 0 of 0 blobs failed")`);

    const waited = setup(mode, { label: 'Pushing x' });
    waited.d.update(ev(1, 'waiting'));
    waited.d.update(ev(2, 'exists'));
    waited.d.finish({ ok: false });
    assert.ok(!waited.out.text().includes('Failed:'), `${mode}: ${waited.out.text()}`);

    const one = setup(mode, { label: 'Pushing x' });
    one.d.update(ev(1, 'uploading', { bytes: 1 }));
    one.d.update(ev(2, 'exists'));
    one.d.update(ev(1, 'failed', { error: 'boom' }));
    one.d.finish({ ok: false });
    assert.match(one.out.text(), /Failed: 1 of 2 blobs failed\n$/, mode);
  }
  const j = setup('json');
  j.d.finish({ ok: false });
  assert.equal(JSON.parse(j.json[0]!).ok, false, 'the JSON summary event is still written');
});

test('none writes nothing; displayModeFor picks json, then quiet, then TTY', () => {
  const { out, json, d } = setup('none');
  d.update(ev(1, 'uploading', { bytes: 1 }));
  d.finish({ ok: true });
  assert.equal(out.writes.length + json.length, 0);
  assert.equal(displayModeFor({ json: true, quiet: true }, true), 'json');
  assert.equal(displayModeFor({ quiet: true }, true), 'none');
  assert.equal(displayModeFor({}, true), 'tty');
  assert.equal(displayModeFor({}, false), 'plain');
});
