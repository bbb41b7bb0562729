/**
 * Fixtures for the Docker Model Runner and Ollama interop tests: artifacts built by hand (the
 * bytes those tools write, per ../shared/reference/peer-formats.md), pushed to a registry with
 * mpk's own client, and a GGUF-looking file.
 */
import { createHash } from 'node:crypto';
import type { TestContext } from 'node:test';
import { RegistryClient } from '../registry/client.js';
import { RemoteRepository } from '../registry/repository.js';
import type { Descriptor } from '../oci/descriptor.js';
import { digestBytes } from '../oci/digest.js';
import { LocalStore } from '../store/store.js';
import { tempDir } from './tmp.js';
import { mpk, type CliResult } from './cli.js';

export const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** A file that starts like GGUF v3 (magic, version 3 little-endian) followed by `size` patterned bytes. */
export function fakeGguf(seed: number, size = 64 * 1024): Buffer {
  const b = Buffer.alloc(8 + size);
  b.write('GGUF', 0, 'latin1');
  b.writeUInt32LE(3, 4);
  for (let i = 8; i < b.length; i++) b[i] = (i * 7 + seed * 13) & 0xff;
  return b;
}

export function descOf(mediaType: string, bytes: Uint8Array, annotations?: Record<string, string>): Descriptor {
  const d: Descriptor = { mediaType, digest: digestBytes(bytes), size: bytes.byteLength };
  if (annotations) d.annotations = annotations;
  return d;
}

export interface HandMade {
  manifest: Buffer;
  manifestDesc: Descriptor;
  /** Config and layers, by digest. */
  blobs: Map<string, Buffer>;
}

/** A manifest document (any shape) and its blobs; `json` decides the exact bytes. */
export function handMade(manifestMediaType: string, doc: unknown, blobs: Buffer[], json: (v: unknown) => string = (v) => JSON.stringify(v)): HandMade {
  const manifest = Buffer.from(json(doc));
  return { manifest, manifestDesc: descOf(manifestMediaType, manifest), blobs: new Map(blobs.map((b) => [digestBytes(b), b])) };
}

/** Pushes blobs, then the manifest by tag, to host/repo (docker-registry, no auth). */
export async function pushHandMade(t: TestContext, host: string, repo: string, tag: string, a: HandMade): Promise<void> {
  const client = new RegistryClient({ retries: 1 });
  t.after(() => client.close());
  const r = new RemoteRepository(client, host, repo);
  for (const b of a.blobs.values()) await r.push(descOf('application/octet-stream', b), b);
  await r.pushReference(a.manifestDesc, a.manifest, tag);
}

/** Stores a hand-made artifact straight into a local store and tags it. */
export async function storeHandMade(store: LocalStore, ref: string, a: HandMade): Promise<void> {
  for (const b of a.blobs.values()) await store.push(descOf('application/octet-stream', b), b);
  await store.push(a.manifestDesc, a.manifest);
  await store.tag(a.manifestDesc, ref);
}

/** The CLI on a fresh store, with no saved registry logins. */
export async function cli(t: TestContext): Promise<{ run: (...argv: string[]) => Promise<CliResult>; store: string; cwd: string }> {
  const store = await tempDir(t, 'mpk-interop-store-');
  (await LocalStore.open(store)).close(); // an existing store: no "created a new store" line in the commands' stderr
  const cwd = await tempDir(t, 'mpk-interop-cwd-');
  const env = { MPK_HOME: store, DOCKER_CONFIG: await tempDir(t, 'mpk-interop-dc-'), PATH: process.env.PATH ?? '' };
  return { run: (...argv: string[]) => mpk(env, cwd, ...argv), store, cwd };
}

/** Parses a CLI result's stdout as JSON (the last line of NDJSON), failing with its stderr when the command failed. */
export function ok<T = Record<string, unknown>>(r: CliResult): T {
  if (r.code !== 0) throw new Error(`mpk exited ${r.code}: ${r.stderr}`);
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as T;
  }
}
