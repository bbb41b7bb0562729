/**
 * The client's referrers listing against real servers on 127.0.0.1: mpk serve cutting a long
 * list into 4 MiB pages (every page is followed), and a server whose Link points back at the same
 * page (a clear REGISTRY error, not a loop). The tag-schema fallback is tested against
 * docker-registry in src/transfer/transfer.test.ts.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { PackError } from '../errors.js';
import { OCI_MANIFEST, putImage, sha256, startTestServer } from '../test-support/serve.js';
import { RegistryClient } from './client.js';
import { RemoteRepository } from './repository.js';

function repository(t: { after(fn: () => unknown): void }, url: string, name: string): RemoteRepository {
  const client = new RegistryClient({ retries: 0 });
  t.after(() => client.close());
  return new RemoteRepository(client, new URL(url).host, name);
}

test('referrers past one page: every Link is followed and each referrer listed once', async (t) => {
  const s = await startTestServer(t);
  const subject = { mediaType: OCI_MANIFEST, digest: sha256('a subject with many large referrers'), size: 30 };
  const note = 'application/vnd.example.note';
  const pushed: string[] = [];
  for (const seed of ['r1', 'r2', 'r3']) {
    // 1.5 MiB of annotation each, copied into the referrers entry: the list exceeds one 4 MiB page.
    const extra = { artifactType: note, subject, annotations: { 'org.example.note': seed.repeat(768 * 1024) } };
    pushed.push((await putImage(s.url, 'paged', seed, { seed, extra })).digest);
  }
  const other = await putImage(s.url, 'paged', 'o', { seed: 'o', extra: { artifactType: 'application/vnd.example.sig', subject } });

  const repo = repository(t, s.url, 'paged');
  const all = await repo.referrers(subject);
  assert.deepEqual(all.map((d) => d.digest).sort(), [...pushed, other.digest].sort());
  const notes = await repo.referrers(subject, note);
  assert.deepEqual(notes.map((d) => d.digest).sort(), [...pushed].sort());
  assert.ok(notes.every((d) => d.annotations?.['org.example.note']?.length === 2 * 768 * 1024));
});

test('a referrers page that links to itself is an error naming the registry, not an endless loop', async (t) => {
  let gets = 0;
  const server = createServer((req, res) => {
    gets++;
    res.writeHead(200, { 'content-type': 'application/vnd.oci.image.index.v1+json', link: `<${req.url}>; rel="next"` });
    res.end(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const err = await repository(t, url, 'loop').referrers({ mediaType: OCI_MANIFEST, digest: sha256('x'), size: 1 }).catch((e: unknown) => e);
  assert.ok(err instanceof PackError, String(err));
  assert.equal(err.code, 'REGISTRY');
  assert.match(err.message, /paging is broken/);
  assert.equal(gets, 1);
});
