/** The `mpk serve` command: serve until the signal, `serve gc`, `serve verify`, usage errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../run.js';
import { mpk } from '../../test-support/cli.js';
import { putBlob, putImage, request, startTestServer } from '../../test-support/serve.js';
import { tempDir } from '../../test-support/tmp.js';
import type { Ctx } from '../context.js';
import { parseDuration, serveOptions } from './serve.js';

test('mpk serve listens, logs each request, and stops cleanly on the signal', async (t) => {
  const root = join(await tempDir(t), 'root');
  const ac = new AbortController();
  let out = '';
  let err = '';
  const done = run(['serve', '--root', root, '--addr', '127.0.0.1:0', '--log-format', 'json'], {
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
    env: {},
    cwd: root,
    signal: ac.signal,
  });
  for (let i = 0; i < 200 && !/listening on/.test(out); i++) await new Promise((r) => setTimeout(r, 10));
  const url = /listening on (http:\/\/[0-9.:]+)/.exec(out)?.[1];
  assert.ok(url, out + err);
  assert.equal((await request(`${url}/v2/`)).status, 200);
  ac.abort();
  assert.equal(await done, 0, err);
  const log = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  assert.deepEqual(log.map((e) => [e.method, e.url, e.status]), [['GET', '/v2/', 200]]);
  assert.match(err, /stopping/);
});

test('mpk serve refuses an open registry beyond loopback and bad flags (exit 2, one line with a hint)', async (t) => {
  const dir = await tempDir(t);
  const io = (sink: { out: string }) => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 3000).unref(); // a server that starts after all is stopped, and the test fails
    return { stdout: { write: () => true }, stderr: { write: (s: string) => (sink.out += s) }, env: {}, cwd: dir, signal: ac.signal };
  };
  for (const args of [['--addr', '0.0.0.0:0'], ['--addr', 'x'], ['--delete', 'some'], ['--upload-ttl', 'soon'], ['--upload-ttl', '0'], ['--token-ttl', '0s'], ['--max-upload-sessions', '0'], ['--max-upload-sessions', '1.5'], ['--min-upload-rate', '-1'], ['--min-upload-rate', 'fast'], ['--min-upload-rate', ''], ['--storage', 'http://bucket'], ['--storage', 's3://B'], ['--storage', 's3://bucket/../x'], ['--s3-endpoint', 'http://127.0.0.1:1'], ['--storage', 's3://bucket', '--s3-endpoint', 'ftp://x'], ['--proxy', 'ftp://x'], ['--proxy', 'https://host/path'], ['--proxy-ttl', 'soon'], ['bogus']]) {
    const sink = { out: '' };
    const code = await run(['serve', '--root', join(dir, 'r'), ...args], io(sink));
    assert.equal(code, 2, args.join(' '));
    assert.match(sink.out, /^mpk: .+\. Hint: .+\n$/, sink.out);
  }
});

test('mpk serve gc removes what nothing references (refused while a server holds the root); serve verify reports corruption', async (t) => {
  const s = await startTestServer(t);
  const img = await putImage(s.url, 'v/one', 'v1');
  const orphan = await putBlob(s.url, 'v/one', 'never referenced');
  const dir = await tempDir(t);
  const locked = await mpk({}, dir, 'serve', 'gc', '--root', s.root, '--grace', '0s');
  assert.equal(locked.code, 5);
  assert.match(locked.stderr, /in use by another mpk serve/);
  await s.close();
  await new Promise((r) => setTimeout(r, 20));
  const dry = await mpk({}, dir, 'serve', 'gc', '--root', s.root, '--grace', '0s', '--dry-run', '--json');
  assert.equal(dry.code, 0, dry.stderr);
  assert.deepEqual(JSON.parse(dry.stdout).blobs, [orphan]);
  const gc = await mpk({}, dir, 'serve', 'gc', '--root', s.root, '--grace', '0s');
  assert.equal(gc.code, 0, gc.stderr);
  assert.match(gc.stdout, /^Removed 1 blob \(16 B\), /);
  const ok = await mpk({}, dir, 'serve', 'verify', '--root', s.root);
  assert.equal(ok.code, 0, ok.stdout);
  assert.match(ok.stdout, /Checked 3 blobs .* 1 repositories, 1 manifests, 1 tags: all good/);
  const layer = join(s.root, 'blobs', 'sha256', img.layer.slice(7));
  await chmod(layer, 0o644);
  await writeFile(layer, 'tampered');
  const bad = await mpk({}, dir, 'serve', 'verify', '--root', s.root);
  assert.equal(bad.code, 4);
  assert.match(bad.stdout, new RegExp(`^CORRUPT ${img.layer}: content has digest sha256:`, 'm'));
});

test('mpk serve gc says what it freed: count and bytes of blobs, expired upload sessions, links and temp files, and the total', async (t) => {
  const s = await startTestServer(t);
  await putBlob(s.url, 'f/one', 'x'.repeat(1000));
  const loc = String((await request(`${s.url}/v2/f/two/blobs/uploads/`, { method: 'POST', headers: { 'content-length': 0 } })).headers.location);
  assert.equal((await request(`${s.url}${loc}`, { method: 'PATCH', body: Buffer.alloc(300_000, 1), headers: { 'content-type': 'application/octet-stream' } })).status, 202);
  await s.close();
  const dir = await tempDir(t);
  const args = ['serve', 'gc', '--root', s.root, '--grace', '0s', '--upload-ttl', '1ms'];
  await new Promise((r) => setTimeout(r, 20));
  const dry = await mpk({}, dir, ...args, '--dry-run');
  assert.equal(dry.code, 0, dry.stderr);
  const line = /^Would remove 1 blob \(1000 B\), 1 expired upload session \(293\.\d KiB\), 1 link \(0 B\), 0 temp files \(0 B\): 294\.\d KiB would be freed\n$/;
  assert.match(dry.stdout, line);
  const json = await mpk({}, dir, ...args, '--dry-run', '--json');
  const r = JSON.parse(json.stdout) as { blobBytes: number; uploadsRemoved: number; uploadBytes: number; bytesFreed: number };
  assert.deepEqual([r.blobBytes, r.uploadsRemoved, r.uploadBytes > 300_000, r.bytesFreed], [1000, 1, true, 1000 + r.uploadBytes]);
  const gc = await mpk({}, dir, ...args);
  assert.equal(gc.code, 0, gc.stderr);
  assert.equal(gc.stdout, dry.stdout.replace('Would remove', 'Removed').replace('would be freed', 'freed'));
});

test('--max-upload-sessions and --min-upload-rate reach the server options (0 turns the minimum rate off)', () => {
  const ctx = { cwd: '/', env: {}, quiet: true, storeRoot: '/store', stdout: { write: () => true }, stderr: { write: () => true } } as unknown as Ctx;
  const o = serveOptions(ctx, { 'max-upload-sessions': '25', 'min-upload-rate': '0' });
  assert.equal(o.maxUploadSessions, 25);
  assert.equal(o.minUploadRate, 0);
  assert.equal(serveOptions(ctx, { 'min-upload-rate': '4096' }).minUploadRate, 4096);
  const none = serveOptions(ctx, {});
  assert.equal(none.maxUploadSessions, undefined, 'the server default (10000)');
  assert.equal(none.minUploadRate, undefined, 'the server default (1024)');
});

test('durations', () => {
  assert.equal(parseDuration('x', '90'), 90_000);
  assert.equal(parseDuration('x', '15m'), 900_000);
  assert.equal(parseDuration('x', '24h'), 86_400_000);
  assert.equal(parseDuration('x', '250ms'), 250);
  assert.throws(() => parseDuration('x', '1w'));
  assert.throws(() => parseDuration('x', `${'9'.repeat(400)}d`), 'an infinite duration');
});
