/**
 * Push, pull and copy against a real docker-registry (Debian's distribution 2.8, no auth), with a
 * fault proxy in front where a test counts requests. One registry serves the whole file (started on
 * first use); each test works in its own repositories.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pullModel, pushModel, transfer, type TransferResult } from './transfer.js';
import type { BuildResult } from '../build/build-model.js';
import { RegistryClient } from '../registry/client.js';
import { RemoteRepository } from '../registry/repository.js';
import type { CopyEvent } from '../graph/copy.js';
import type { Descriptor } from '../oci/descriptor.js';
import { digestBytes } from '../oci/digest.js';
import { OCI_EMPTY, OCI_INDEX, OCI_MANIFEST } from '../oci/media-types.js';
import { hasErrorCode, type ErrorCode } from '../errors.js';
import { fileRegistry, startDockerRegistry } from '../test-support/registry-peer.js';
import { assertSameFiles, builtModel, openStore } from '../test-support/store-models.js';
import { startFaultProxy, type FaultLogEntry } from '../test-support/fault-proxy.js';

type T = TestContext;

/** The file's registry, started on first use; null when the test was skipped for lack of it. */
const registry = fileRegistry();

function client(t: T): RegistryClient {
  const c = new RegistryClient({ retries: 2 });
  t.after(() => c.close());
  return c;
}

async function rejectsWith(p: () => Promise<unknown>, code: ErrorCode, check?: (e: Error & { hint?: string }) => void): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(hasErrorCode(e, code), `expected ${code}, got ${String(e)}`);
    check?.(e as Error & { hint?: string });
    return true;
  });
}

const isUploadWrite = (e: FaultLogEntry): boolean => /\/blobs\/uploads\//.test(e.url) && (e.method === 'PATCH' || e.method === 'PUT');
const isBlobGet = (e: FaultLogEntry): boolean => e.method === 'GET' && /\/blobs\/sha256:/.test(e.url);

test('push then pull into another store: same manifest digest, files byte for byte', async (t) => {
  const reg = await registry(t);
  if (!reg) return;
  const { store, dir, built, ref } = await builtModel(t, 'a');
  const remote = `${reg.host}/tt/roundtrip:v1`;
  const pushed = await pushModel(store, ref, remote);
  assert.equal(pushed.root.digest, built.manifest.digest);
  assert.equal(pushed.destination, remote);
  assert.ok(pushed.stats.transferred >= 7, `every blob moved: ${JSON.stringify(pushed.stats)}`);

  const store2 = await openStore(t);
  const pulled = await pullModel(store2, remote);
  assert.equal(pulled.root.digest, built.manifest.digest);
  assert.equal((await store2.resolve(remote)).digest, built.manifest.digest);
  await assertSameFiles(t, store2, remote, dir, 6);
});

test('a second push and a pull of a model already present move no blob bytes', async (t) => {
  const reg = await registry(t);
  if (!reg) return;
  const proxy = await startFaultProxy(t, reg.url);
  const { store, ref, built } = await builtModel(t, 'b');
  const remote = `${proxy.host}/tt/again:v1`;
  const first = await pushModel(store, ref, remote);
  assert.ok(first.stats.transferred > 0);
  assert.ok(proxy.log.some(isUploadWrite), 'the first push uploads');

  proxy.log.length = 0;
  const events: CopyEvent[] = [];
  const second = await pushModel(store, ref, remote, { onEvent: (e) => events.push(e) });
  assert.equal(second.root.digest, built.manifest.digest);
  assert.equal(second.stats.transferred, 0);
  assert.equal(second.stats.bytes, 0);
  assert.deepEqual(proxy.log.filter(isUploadWrite), [], 'no blob upload');
  assert.deepEqual(proxy.log.filter((e) => e.method === 'POST'), [], 'no upload session');
  assert.ok(!events.some((e) => e.state === 'uploading' || e.state === 'done'), JSON.stringify(events));

  const store2 = await openStore(t);
  await pullModel(store2, remote);
  proxy.log.length = 0;
  const again = await pullModel(store2, remote);
  assert.equal(again.root.digest, built.manifest.digest);
  assert.equal(again.stats.transferred, 0);
  assert.deepEqual(proxy.log.filter(isBlobGet), [], 'no blob downloaded');
});

test('copy between two repositories of one registry mounts the blobs', async (t) => {
  const reg = await registry(t);
  if (!reg) return;
  const proxy = await startFaultProxy(t, reg.url);
  const { store, ref, built } = await builtModel(t, 'c');
  const src = `${proxy.host}/tt/mount-src:v1`;
  const dst = `${proxy.host}/tt/mount-dst:v1`;
  await pushModel(store, ref, src);
  proxy.log.length = 0;
  const r = await transfer(undefined, src, dst);
  assert.equal(r.root.digest, built.manifest.digest);
  assert.ok(r.stats.mounted >= 7, JSON.stringify(r.stats));
  assert.equal(r.stats.bytes, 0);
  const mounts = proxy.log.filter((e) => e.method === 'POST' && /[?&]mount=sha256%3A|[?&]mount=sha256:/.test(e.url));
  assert.equal(mounts.length, r.stats.mounted);
  for (const m of mounts) {
    assert.match(m.url, /[?&]from=tt%2Fmount-src(&|$)|[?&]from=tt\/mount-src(&|$)/);
    assert.equal(m.status, 201);
  }
  assert.deepEqual(proxy.log.filter(isUploadWrite), [], 'no blob uploaded');
  const repo = new RemoteRepository(client(t), reg.host, 'tt/mount-dst');
  assert.equal((await repo.resolve('v1')).digest, built.manifest.digest);
});

test('copy between two registries', async (t) => {
  const reg = await registry(t);
  if (!reg) return;
  const other = await startDockerRegistry(t);
  const { store, ref, built, dir } = await builtModel(t, 'd');
  const src = `${reg.host}/tt/cross:v1`;
  const dst = `${other.host}/elsewhere/cross:v2`;
  await pushModel(store, ref, src);
  const r = await transfer(undefined, src, dst);
  assert.equal(r.root.digest, built.manifest.digest);
  assert.equal(r.stats.mounted, 0);
  assert.ok(r.stats.transferred >= 7, JSON.stringify(r.stats));
  const repo = new RemoteRepository(client(t), other.host, 'elsewhere/cross');
  assert.equal((await repo.resolve('v2')).digest, built.manifest.digest);
  const store2 = await openStore(t);
  await pullModel(store2, dst);
  await assertSameFiles(t, store2, dst, dir, 6);
});

test('chunked upload: 1 MiB PATCHes with Content-Range, then the pull gives the same bytes', async (t) => {
  const reg = await registry(t);
  if (!reg) return;
  const proxy = await startFaultProxy(t, reg.url);
  const weights = Buffer.alloc(3 * 1024 * 1024 + 12_345);
  for (let i = 0; i < weights.length; i++) weights[i] = (i * 7 + (i >> 12)) & 0xff;
  const { store, ref, dir, built } = await builtModel(t, 'e', {
    'model.safetensors': weights,
    'config.json': JSON.stringify({ model_type: 'llama' }),
  });
  const ranges: string[] = [];
  // A rule that never fires: it only records the Content-Range of every PATCH.
  proxy.rules.push({
    match: (r) => {
      if (r.method === 'PATCH') ranges.push(String(r.headers['content-range']));
      return false;
    },
  });
  const remote = `${proxy.host}/tt/chunked:v1`;
  await pushModel(store, ref, remote, { chunkSize: 1024 * 1024 });
  const mib = 1024 * 1024;
  assert.deepEqual(ranges, [`0-${mib - 1}`, `${mib}-${2 * mib - 1}`, `${2 * mib}-${3 * mib - 1}`, `${3 * mib}-${weights.length - 1}`]);
  const patches = proxy.log.filter((e) => e.method === 'PATCH');
  assert.equal(patches.length, 4);
  assert.ok(patches.every((p) => p.status === 202), JSON.stringify(patches));

  const store2 = await openStore(t);
  const pulled = await pullModel(store2, remote);
  assert.equal(pulled.root.digest, built.manifest.digest);
  await assertSameFiles(t, store2, remote, dir, 2);
});

/**
 * A front that serves one thing, GET /v2/NAME/tags/list, from the real registry's list but paged as
 * the distribution spec says (`n`, `last`, a relative `Link: <…>; rel="next"`): docker-registry
 * 2.8.2 ignores `n` and always answers the whole list in one page, so it never sends a Link.
 */
async function pagingFront(t: T, upstream: string): Promise<{ host: string; urls: string[] }> {
  const urls: string[] = [];
  const server = createServer((req, res) => {
    void (async () => {
      urls.push(req.url ?? '');
      const u = new URL(req.url ?? '/', 'http://front.invalid');
      const m = /^\/v2\/(.+)\/tags\/list$/.exec(u.pathname);
      if (req.method !== 'GET' || !m) {
        res.writeHead(404).end();
        return;
      }
      const up = await fetch(`${upstream}/v2/${m[1]}/tags/list`);
      const all = ((await up.json()) as { tags: string[] }).tags.sort();
      const last = u.searchParams.get('last');
      const rest = last === null ? all : all.filter((x) => x > last);
      const n = Number(u.searchParams.get('n')) || rest.length;
      const page = rest.slice(0, n);
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (rest.length > n) headers.link = `</v2/${m[1]}/tags/list?n=${n}&last=${encodeURIComponent(page[page.length - 1]!)}>; rel="next"`;
      res.writeHead(200, headers).end(JSON.stringify({ name: m[1], tags: page }));
    })().catch((e: unknown) => res.writeHead(500).end(String(e)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  }));
  return { host: `127.0.0.1:${(server.address() as AddressInfo).port}`, urls };
}

test('tags(): 5 tags with pageSize 2, from the registry and through Link pagination', async (t) => {
  const reg = await registry(t);
  if (!reg) return;
  const proxy = await startFaultProxy(t, reg.url);
  const { store, ref } = await builtModel(t, 'f');
  await pushModel(store, ref, `${reg.host}/tt/paged:t1`);
  const c = client(t);
  const repo = new RemoteRepository(c, proxy.host, 'tt/paged');
  const desc = await repo.resolve('t1');
  for (const tag of ['t2', 't3', 't4', 't5']) await repo.tag(desc, tag);
  const want = ['t1', 't2', 't3', 't4', 't5'];

  proxy.log.length = 0;
  const direct: string[] = [];
  for await (const tag of repo.tags({ pageSize: 2 })) direct.push(tag);
  assert.deepEqual([...direct].sort(), want);
  const asked = proxy.log.filter((e) => e.method === 'GET' && e.url.includes('/tags/list'));
  assert.ok(asked.length >= 1 && /[?&]n=2(&|$)/.test(asked[0]!.url), asked.map((e) => e.url).join(' '));

  const front = await pagingFront(t, reg.url);
  const paged: string[] = [];
  for await (const tag of new RemoteRepository(c, front.host, 'tt/paged').tags({ pageSize: 2 })) paged.push(tag);
  assert.deepEqual(paged, want, 'every page, in order, each tag once');
  assert.deepEqual(front.urls, ['/v2/tt/paged/tags/list?n=2', '/v2/tt/paged/tags/list?n=2&last=t2', '/v2/tt/paged/tags/list?n=2&last=t4']);

  const resumed: string[] = [];
  for await (const tag of new RemoteRepository(c, front.host, 'tt/paged').tags({ pageSize: 2, last: 't3' })) resumed.push(tag);
  assert.deepEqual(resumed, ['t4', 't5']);
});

test('delete of a manifest by digest: resolve then says NOT_FOUND', async (t) => {
  const reg = await registry(t);
  if (!reg) return;
  const { store, ref, built } = await builtModel(t, 'g');
  await pushModel(store, ref, `${reg.host}/tt/deleted:v1`);
  const repo = new RemoteRepository(client(t), reg.host, 'tt/deleted');
  const desc = await repo.resolve('v1');
  assert.equal(desc.digest, built.manifest.digest);
  await repo.delete(desc);
  await rejectsWith(() => repo.resolve(desc.digest), 'NOT_FOUND');
  assert.equal(await repo.exists(desc), false);
});

test('referrers: a manifest with a subject is listed through the sha256-<hex> fallback tag', async (t) => {
  const reg = await registry(t);
  if (!reg) return;
  const { store, ref, built } = await builtModel(t, 'h');
  await pushModel(store, ref, `${reg.host}/tt/referred:v1`);
  const repo = new RemoteRepository(client(t), reg.host, 'tt/referred');
  const subject = await repo.resolve('v1');
  assert.equal(subject.digest, built.manifest.digest);
  assert.deepEqual(await repo.referrers(subject), [], 'none yet');

  const empty = Buffer.from('{}');
  const emptyDesc: Descriptor = { mediaType: OCI_EMPTY, digest: digestBytes(empty), size: empty.length };
  await repo.push(emptyDesc, empty);
  const artifactType = 'application/vnd.example.signature.v1+json';
  const sig = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType,
      config: { ...emptyDesc, data: empty.toString('base64') },
      layers: [emptyDesc],
      subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
      annotations: { 'org.example.note': 'signed' },
    }),
  );
  const sigDesc: Descriptor = { mediaType: OCI_MANIFEST, digest: digestBytes(sig), size: sig.length };
  await repo.push(sigDesc, sig);

  const refs = await repo.referrers(subject);
  assert.equal(refs.length, 1, JSON.stringify(refs));
  assert.equal(refs[0]!.digest, sigDesc.digest);
  assert.equal(refs[0]!.artifactType, artifactType);
  assert.equal(refs[0]!.annotations?.['org.example.note'], 'signed');
  assert.deepEqual(await repo.referrers(subject, 'application/vnd.other'), [], 'filtered by artifactType');

  const tags: string[] = [];
  for await (const tag of repo.tags()) tags.push(tag);
  assert.ok(tags.includes(`sha256-${subject.digest.slice(7)}`), tags.join(' '));
  // Pushing the same referrer again does not list it twice.
  await repo.push(sigDesc, sig);
  assert.equal((await repo.referrers(subject)).length, 1);
});

test('pull from an index: --variant picks one manifest; without it a USAGE error lists both', async (t) => {
  const reg = await registry(t);
  if (!reg) return;
  const q4 = await builtModel(t, 'q');
  const q8 = await builtModel(t, 'r');
  const base = `${reg.host}/tt/multi`;
  await pushModel(q4.store, q4.ref, `${base}:q4`);
  await pushModel(q8.store, q8.ref, `${base}:q8`);
  const entry = (b: BuildResult, quant: string): Descriptor => ({
    mediaType: b.manifest.mediaType,
    digest: b.manifest.digest,
    size: b.manifest.size,
    ...(b.manifest.artifactType ? { artifactType: b.manifest.artifactType } : {}),
    annotations: { 'org.cncf.model.quantization': quant },
  });
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [entry(q4.built, 'Q4_K_M'), entry(q8.built, 'Q8_0')] }));
  const indexDesc: Descriptor = { mediaType: OCI_INDEX, digest: digestBytes(index), size: index.length };
  const repo = new RemoteRepository(client(t), reg.host, 'tt/multi');
  await repo.pushReference(indexDesc, index, 'all');
  assert.equal((await repo.resolve('all')).digest, indexDesc.digest);

  const store = await openStore(t);
  const r = await pullModel(store, `${base}:all`, undefined, { select: { variant: 'Q8_0' } });
  assert.equal(r.resolved.digest, indexDesc.digest);
  assert.equal(r.root.digest, q8.built.manifest.digest);
  assert.equal((await store.resolve(`${base}:all`)).digest, q8.built.manifest.digest);
  await assertSameFiles(t, store, `${base}:all`, q8.dir, 6);

  const store2 = await openStore(t);
  await rejectsWith(
    () => pullModel(store2, `${base}:all`),
    'USAGE',
    (e) => {
      assert.match(e.hint ?? '', /Q4_K_M/);
      assert.match(e.hint ?? '', /Q8_0/);
    },
  );
  await rejectsWith(() => store2.resolve(`${base}:all`), 'NOT_FOUND');
});

test('errors: a missing tag is NOT_FOUND; a push reference without a host is USAGE', async (t) => {
  const reg = await registry(t);
  if (!reg) return;
  const { store, ref } = await builtModel(t, 'i');
  await rejectsWith(() => pullModel(store, `${reg.host}/tt/nothing:here`), 'NOT_FOUND');
  await pushModel(store, ref, `${reg.host}/tt/some:v1`);
  await rejectsWith(() => pullModel(store, `${reg.host}/tt/some:nope`), 'NOT_FOUND');
  await rejectsWith(async () => pushModel(store, ref, 'models/nohost:v1'), 'USAGE', (e) => assert.match(e.hint ?? '', /HOST/));
  await rejectsWith(async () => pullModel(store, 'models/nohost:v1'), 'USAGE');
});

test('pushModel and pullModel report errors as rejected promises, not synchronous throws', async (t) => {
  const store = await openStore(t);
  let p: Promise<TransferResult> | undefined;
  assert.doesNotThrow(() => {
    p = pushModel(store, 'x:1', 'models/nohost:v1');
  }, 'pushModel threw synchronously');
  await rejectsWith(() => p!, 'USAGE');
  assert.doesNotThrow(() => {
    p = pullModel(store, 'models/nohost:v1');
  }, 'pullModel threw synchronously');
  await rejectsWith(() => p!, 'USAGE');
});
