/**
 * Fault injection for pull and push against a real docker-registry, through the fault proxy
 * (../test-support/fault-proxy.ts): connections cut mid-blob, flipped bytes, kill -9 of a pull,
 * 5xx/429 answers, stalls, and a failed PATCH of a chunked upload. Each test asserts what reached
 * the store (verified blobs, extracted bytes) and what went over the wire (the proxy's log).
 */
import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { buildModel } from '../build/build-model.js';
import { hasErrorCode } from '../errors.js';
import { extractModel } from '../extract/extract.js';
import type { Descriptor } from '../oci/descriptor.js';
import { LocalStore } from '../store/store.js';
import { verifyStore } from '../store/verify.js';
import { startFaultProxy, type FaultLogEntry, type FaultProxy } from '../test-support/fault-proxy.js';
import { mpkProcess, requirePeer } from '../test-support/peers.js';
import { startDockerRegistry, type RegistryPeer } from '../test-support/registry-peer.js';
import { tempDir, writeTree } from '../test-support/tmp.js';
import { pullModel, pushModel, type TransferOptions } from './transfer.js';

const MiB = 1024 * 1024;
const WEIGHT_SIZE = 16 * MiB + 4321; // not a multiple of the 1 MiB batch or chunk
const REPO = 'models/faulty';
const TAG = 'v1';
const REPO_ROOT = new URL('../../', import.meta.url).pathname;
const MPK_BIN = new URL('../test-support/mpk-bin.ts', import.meta.url).pathname;

interface Shared {
  registry: RegistryPeer;
  /** A store holding the built model (source of pushes). */
  srcStore: LocalStore;
  manifest: Descriptor;
  weight: Buffer;
  weightLayer: Descriptor;
  /** A DOCKER_CONFIG with no credentials, so no test reads the user's. */
  dockerConfig: string;
}

let shared: Promise<Shared> | undefined;
const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const fn of cleanups.reverse()) await fn();
});

/** One registry and one model for the whole file, pushed there directly (no proxy). */
function setup(t: TestContext): Promise<Shared> | undefined {
  if (!requirePeer(t, 'docker-registry')) return undefined;
  shared ??= (async () => {
    const registry = await startDockerRegistry(null);
    cleanups.push(() => registry.stop());
    const dir = await tempDir({ after: (fn: () => unknown) => void cleanups.push(fn) }, 'mpk-faults-');
    const weight = randomBytes(WEIGHT_SIZE);
    await writeTree(join(dir, 'model'), {
      'model.safetensors': weight,
      'config.json': JSON.stringify({ model_type: 'llama', torch_dtype: 'bfloat16' }),
      'tokenizer.json': '{"faults":true}',
    });
    const srcStore = await LocalStore.open(join(dir, 'src-store'));
    cleanups.push(() => srcStore.close());
    const built = await buildModel(srcStore, { contextDir: join(dir, 'model'), reference: `${REPO}:${TAG}` });
    const parsed = await srcStore.readManifest(built.manifest);
    assert.equal(parsed.kind, 'manifest');
    const weightLayer = parsed.kind === 'manifest' ? parsed.manifest.layers.find((l) => l.size === WEIGHT_SIZE) : undefined;
    assert.ok(weightLayer, 'the weight file is one raw layer');
    const dockerConfig = join(dir, 'docker');
    await writeTree(dockerConfig, { 'config.json': '{}' });
    await pushModel(srcStore, `${REPO}:${TAG}`, `${registry.host}/${REPO}:${TAG}`, { env: { DOCKER_CONFIG: dockerConfig } });
    return { registry, srcStore, manifest: built.manifest, weight, weightLayer, dockerConfig };
  })();
  return shared;
}

async function proxyFor(t: TestContext, s: Shared): Promise<FaultProxy> {
  return startFaultProxy(t, s.registry.url);
}

/** Fast retries, no user credentials. */
function opts(s: Shared, extra: TransferOptions = {}): TransferOptions {
  return { retryBaseMs: 10, env: { DOCKER_CONFIG: s.dockerConfig }, ...extra };
}

const isBlobGet = (digest: string) => (r: { method: string; url: string }) => r.method === 'GET' && r.url.includes(`/blobs/${digest}`);
const blobGets = (log: FaultLogEntry[], digest: string) => log.filter((e) => e.method === 'GET' && e.url.includes(`/blobs/${digest}`));

function rangeStart(range: string | undefined): number {
  const m = /^bytes=(\d+)-$/.exec(range ?? '');
  assert.ok(m, `expected a Range header bytes=N-, got ${String(range)}`);
  return Number(m[1]);
}

function hexOf(digest: string): string {
  return digest.slice('sha256:'.length);
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return false;
      throw e;
    },
  );
}

async function partialDirEntries(storeRoot: string): Promise<string[]> {
  return readdir(join(storeRoot, 'ingest', 'partial')).catch(() => []);
}

/** Every stored blob's bytes hash to its name (nothing corrupt is visible under blobs/). */
async function assertBlobsMatchNames(storeRoot: string): Promise<void> {
  const dir = join(storeRoot, 'blobs', 'sha256');
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const got = createHash('sha256').update(await readFile(join(dir, name))).digest('hex');
    assert.equal(got, name, `blobs/sha256/${name} holds other bytes`);
  }
}

/** The pulled model is whole: every blob verifies, and the weight file extracts byte for byte. */
async function assertPulledIntact(t: TestContext, s: Shared, store: LocalStore, reference: string): Promise<void> {
  await store.blobs.verify(s.weightLayer);
  const v = await verifyStore(store, [reference]);
  assert.deepEqual(v.problems, []);
  assert.ok(v.checked >= 3, `verified ${v.checked} blobs`);
  const out = await tempDir(t, 'mpk-faults-out-');
  await extractModel(store, reference, out);
  const got = await readFile(join(out, 'model.safetensors'));
  assert.equal(got.length, s.weight.length);
  assert.ok(got.equals(s.weight), 'extracted weights differ from the original');
}

async function freshStore(t: TestContext): Promise<LocalStore> {
  const store = await LocalStore.open(join(await tempDir(t, 'mpk-faults-store-'), 'store'));
  t.after(() => store.close());
  return store;
}

test('pull: a connection cut mid-blob is resumed in the same run from (nearly) where it broke', async (t) => {
  const s = await setup(t);
  if (!s) return;
  const proxy = await proxyFor(t, s);
  const store = await freshStore(t);
  const digest = s.weightLayer.digest;
  const CUT = 5 * MiB + 12_345;
  proxy.rules.push({ match: isBlobGet(digest), cutAfterBytes: CUT, times: 1 });
  const ref = `${proxy.host}/${REPO}:${TAG}`;

  const r = await pullModel(store, ref, undefined, opts(s));
  assert.equal(r.root.digest, s.manifest.digest);

  const gets = blobGets(proxy.log, digest);
  assert.equal(gets.length, 2, `GETs of the weight blob: ${JSON.stringify(gets)}`);
  assert.equal(gets[0]!.range, undefined, 'the first GET asks for the whole blob');
  assert.equal(gets[0]!.faulted, `cut@${CUT}`);
  assert.equal(gets[0]!.bodyBytesSent, CUT);
  const n = rangeStart(gets[1]!.range);
  assert.ok(n > CUT - MiB && n <= CUT, `resumed from ${n}: more than 1 MiB before the cut at ${CUT} was fetched twice`);
  assert.equal(gets[1]!.status, 206);
  assert.equal(gets[1]!.bodyBytesSent, WEIGHT_SIZE - n);
  assert.equal(gets[1]!.faulted, undefined);

  await assertPulledIntact(t, s, store, ref);
  assert.deepEqual(await partialDirEntries(store.root), [], 'no partial file or claim is left behind');
});

test('pull: a flipped byte fails with DIGEST_MISMATCH (exit 4), stores nothing, and a clean pull then works', async (t) => {
  const s = await setup(t);
  if (!s) return;
  const proxy = await proxyFor(t, s);
  const store = await freshStore(t);
  const digest = s.weightLayer.digest;
  proxy.rules.push({ match: isBlobGet(digest), flipByteAt: 3 * MiB + 7, times: Infinity });
  const ref = `${proxy.host}/${REPO}:${TAG}`;

  await assert.rejects(pullModel(store, ref, undefined, opts(s)), (e: unknown) => {
    assert.ok(hasErrorCode(e, 'DIGEST_MISMATCH'), `expected DIGEST_MISMATCH, got ${String(e)}`);
    return true;
  });
  const cli = await mpkProcess(['pull', '-q', ref], { MPK_HOME: store.root, DOCKER_CONFIG: s.dockerConfig }, REPO_ROOT);
  assert.equal(cli.code, 4, `mpk pull exit code (stderr: ${cli.stderr})`);
  assert.match(cli.stderr, new RegExp(hexOf(digest).slice(0, 12)), 'the error names the blob');
  const flipped = blobGets(proxy.log, digest).filter((e) => e.faulted?.startsWith('flip@'));
  assert.ok(flipped.length >= 2, 'both pulls got the flipped byte');

  // Nothing of the bad blob is visible: not as a blob, not as a partial file, not under a tag.
  assert.equal(await exists(join(store.root, 'blobs', 'sha256', hexOf(digest))), false, 'the corrupt blob must not be stored');
  assert.equal(await exists(join(store.root, 'ingest', 'partial', `sha256-${hexOf(digest)}`)), false, 'the corrupt bytes must not be kept for resuming');
  assert.deepEqual(await store.list(), [], 'no tag for a model that failed to pull');
  await assertBlobsMatchNames(store.root);
  assert.deepEqual((await verifyStore(store)).problems, []);

  proxy.rules.length = 0;
  const r = await pullModel(store, ref, undefined, opts(s));
  assert.equal(r.root.digest, s.manifest.digest);
  assert.deepEqual((await store.list()).map((e) => e.reference), [ref]);
  await assertPulledIntact(t, s, store, ref);
});

test('pull: after kill -9 mid-blob, the next pull resumes from the partial file', async (t) => {
  const s = await setup(t);
  if (!s) return;
  const proxy = await proxyFor(t, s);
  const storeRoot = join(await tempDir(t, 'mpk-faults-kill-'), 'store');
  const digest = s.weightLayer.digest;
  const partial = join(storeRoot, 'ingest', 'partial', `sha256-${hexOf(digest)}`);
  proxy.rules.push({ match: isBlobGet(digest), stallAfterBytes: 6 * MiB + 99, times: 1 });
  const ref = `${proxy.host}/${REPO}:${TAG}`;
  const env = { ...process.env, MPK_HOME: storeRoot, DOCKER_CONFIG: s.dockerConfig };

  const child = spawn(process.execPath, ['--import', 'tsx', MPK_BIN, 'pull', '-q', ref], { env, cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  });

  // Wait until the stalled download has put some bytes in the partial file.
  const deadline = Date.now() + 20_000;
  let kept = 0;
  while (Date.now() < deadline && child.exitCode === null) {
    kept = await stat(partial).then((st) => st.size, () => 0);
    if (kept > 0 && (await exists(`${partial}.lock`))) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.ok(kept > 0, `no partial download appeared (child exit ${child.exitCode}, stderr: ${stderr})`);
  process.kill(child.pid!, 'SIGKILL');
  const end = await exited;
  assert.equal(end.signal, 'SIGKILL');
  kept = (await stat(partial)).size; // what the killed process left
  assert.ok(kept > 0 && kept < WEIGHT_SIZE);
  assert.ok(await exists(`${partial}.lock`), 'the dead process leaves its claim behind');
  assert.equal(await exists(join(storeRoot, 'blobs', 'sha256', hexOf(digest))), false);

  const mark = proxy.log.length;
  const again = await mpkProcess(['pull', '-q', ref], { MPK_HOME: storeRoot, DOCKER_CONFIG: s.dockerConfig }, REPO_ROOT);
  assert.equal(again.code, 0, `second pull failed: ${again.stderr}`);

  const gets = blobGets(proxy.log.slice(mark), digest);
  assert.equal(gets.length, 1, `GETs of the weight blob in the second run: ${JSON.stringify(gets)}`);
  const n = rangeStart(gets[0]!.range);
  assert.equal(n, kept, 'resumed exactly after the bytes the killed run kept');
  assert.equal(gets[0]!.status, 206);
  assert.equal(gets[0]!.bodyBytesSent, WEIGHT_SIZE - kept);

  assert.equal(await exists(partial), false, 'the partial file is gone');
  assert.equal(await exists(`${partial}.lock`), false, 'the claim is gone');
  const store = await LocalStore.open(storeRoot);
  t.after(() => store.close());
  await assertPulledIntact(t, s, store, ref);
});

test('pull: 429 with Retry-After and then 503 on the manifest GET by tag are retried (one GET resolves and fetches it)', async (t) => {
  const s = await setup(t);
  if (!s) return;
  const proxy = await proxyFor(t, s);
  const store = await freshStore(t);
  const seen: { method: string; url: string; at: number }[] = [];
  proxy.rules.push({
    match: (r) => {
      seen.push({ method: r.method, url: r.url, at: Date.now() });
      return false;
    },
    times: Infinity,
  });
  const tagPath = `/v2/${REPO}/manifests/${TAG}`;
  proxy.rules.push({ match: (r) => r.method === 'GET' && r.url === tagPath, status: 429, retryAfter: 1, times: 1 });
  proxy.rules.push({ match: (r) => r.method === 'GET' && r.url === tagPath, status: 503, times: 1 });
  const ref = `${proxy.host}/${REPO}:${TAG}`;

  const r = await pullModel(store, ref, undefined, opts(s, { retryBaseMs: 5 }));
  assert.equal(r.root.digest, s.manifest.digest);

  const gets = proxy.log.filter((e) => e.method === 'GET' && e.url === tagPath);
  assert.deepEqual(
    gets.map((e) => [e.status, e.faulted]),
    [
      [429, 'status 429'],
      [503, 'status 503'],
      [200, undefined],
    ],
  );
  const getTimes = seen.filter((e) => e.method === 'GET' && e.url === tagPath).map((e) => e.at);
  assert.ok(getTimes[1]! - getTimes[0]! >= 900, `Retry-After: 1 not honoured (retried after ${getTimes[1]! - getTimes[0]!} ms)`);
  const manifestRequests = proxy.log.filter((e) => e.url.includes('/manifests/'));
  assert.equal(manifestRequests.filter((e) => e.status === 200).length, 1, 'one manifest request answered: no HEAD before the GET, no GET by digest after');
  await assertPulledIntact(t, s, store, ref);
});

test('push: 429 with Retry-After on a blob HEAD is retried', async (t) => {
  const s = await setup(t);
  if (!s) return;
  const proxy = await proxyFor(t, s);
  const digest = s.weightLayer.digest;
  const headPath = `/v2/models/head429/blobs/${digest}`;
  proxy.rules.push({ match: (r) => r.method === 'HEAD' && r.url === headPath, status: 429, retryAfter: 1, times: 1 });
  const started = Date.now();
  await pushModel(s.srcStore, `${REPO}:${TAG}`, `${proxy.host}/models/head429:v1`, opts(s, { retryBaseMs: 5 }));
  assert.ok(Date.now() - started >= 900, 'Retry-After: 1 was not waited for');
  const heads = proxy.log.filter((e) => e.method === 'HEAD' && e.url === headPath);
  assert.deepEqual(
    heads.map((e) => e.status),
    [429, 404],
  );
  const store = await freshStore(t);
  const r = await pullModel(store, `${s.registry.host}/models/head429:v1`, undefined, opts(s));
  assert.equal(r.root.digest, s.manifest.digest);
  await assertPulledIntact(t, s, store, `${s.registry.host}/models/head429:v1`);
});

test('pull: a stalled blob download is given up after stallMs and resumed with Range', async (t) => {
  const s = await setup(t);
  if (!s) return;
  const proxy = await proxyFor(t, s);
  const store = await freshStore(t);
  const digest = s.weightLayer.digest;
  const STALL = 4 * MiB + 5;
  proxy.rules.push({ match: isBlobGet(digest), stallAfterBytes: STALL, times: 1 });
  const ref = `${proxy.host}/${REPO}:${TAG}`;

  const started = Date.now();
  const r = await pullModel(store, ref, undefined, opts(s, { stallMs: 1000 }));
  const took = Date.now() - started;
  assert.equal(r.root.digest, s.manifest.digest);
  assert.ok(took >= 900, `finished in ${took} ms: the stall was not waited out`);
  assert.ok(took < 15_000, `took ${took} ms for a 1 s stall timeout`);

  const gets = blobGets(proxy.log, digest);
  assert.equal(gets.length, 2, `GETs of the weight blob: ${JSON.stringify(gets)}`);
  assert.equal(gets[0]!.faulted, `stall@${STALL}`);
  const n = rangeStart(gets[1]!.range);
  assert.ok(n > STALL - MiB && n <= STALL, `resumed from ${n}, stalled at ${STALL}`);
  assert.equal(gets[1]!.status, 206);
  await assertPulledIntact(t, s, store, ref);
});

test('push: a PATCH answered 500 is resumed from the offset the registry reports; the model pulls back identical', async (t) => {
  const s = await setup(t);
  if (!s) return;
  const proxy = await proxyFor(t, s);
  const patches: { url: string; contentRange: string | undefined }[] = [];
  const uploadGets: number[] = []; // indexes into patches at the time of each upload-status GET
  proxy.rules.push({
    match: (r) => {
      if (r.method === 'PATCH') patches.push({ url: r.url, contentRange: r.headers['content-range'] as string | undefined });
      if (r.method === 'GET' && r.url.includes('/blobs/uploads/')) uploadGets.push(patches.length);
      return false;
    },
    times: Infinity,
  });
  let seenPatches = 0;
  const FAIL_AT = 4; // the 4th PATCH: bytes 3 MiB.. of the weight blob
  proxy.rules.push({ match: (r) => r.method === 'PATCH' && ++seenPatches === FAIL_AT, status: 500, times: 1 });
  const dst = `${proxy.host}/models/pushfault:v1`;

  const r = await pushModel(s.srcStore, `${REPO}:${TAG}`, dst, opts(s, { chunkSize: MiB }));
  assert.equal(r.root.digest, s.manifest.digest);

  const failed = proxy.log.filter((e) => e.method === 'PATCH' && e.faulted === 'status 500');
  assert.equal(failed.length, 1);
  assert.equal(patches[FAIL_AT - 1]!.contentRange, `${3 * MiB}-${4 * MiB - 1}`);
  // The upload went on in the same session from the registry's offset, not from zero.
  assert.ok(uploadGets.includes(FAIL_AT), `an upload-status GET after the failed PATCH (at ${JSON.stringify(uploadGets)})`);
  assert.equal(patches[FAIL_AT]!.contentRange, `${3 * MiB}-${4 * MiB - 1}`, 'the failed chunk is sent again');
  const weightPatches = Math.ceil(WEIGHT_SIZE / MiB);
  assert.equal(patches.length, weightPatches + 1, 'exactly one chunk sent twice');
  assert.equal(
    proxy.log.filter((e) => e.method === 'POST' && e.url.includes('/blobs/uploads/')).length,
    proxy.log.filter((e) => e.method === 'PUT' && e.url.includes('/blobs/uploads/')).length,
    'one upload session per blob',
  );

  // Pulled back straight from the registry: the same manifest and the same bytes.
  const store = await freshStore(t);
  const back = `${s.registry.host}/models/pushfault:v1`;
  const pulled = await pullModel(store, back, undefined, opts(s));
  assert.equal(pulled.root.digest, s.manifest.digest);
  const original = await s.srcStore.blobs.read(s.manifest, 4 * MiB);
  const copy = await store.blobs.read(pulled.root, 4 * MiB);
  assert.ok(copy.equals(original), 'the pushed manifest differs');
  await assertPulledIntact(t, s, store, back);
});
