/**
 * An Ollama models directory laid out as Ollama itself writes it (peer-formats.md §2): Go's key
 * order, a trailing newline, `blobs/sha256-<hex>`, `manifests/<host>/<ns>/<model>/<tag>`.
 */
import type { TestContext } from 'node:test';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { digestBytes } from '../oci/digest.js';
import { DOCKER_MANIFEST } from '../oci/media-types.js';
import { OLLAMA_CONFIG } from '../interop/ollama.js';
import { fakeGguf } from './interop.js';
import { tempDir } from './tmp.js';

export interface Laid {
  dir: string;
  manifestPath: string;
  manifest: Buffer;
  /** digest → bytes, config included. */
  blobs: Map<string, Buffer>;
  gguf: Buffer;
}

export const blobPath = (dir: string, digest: string) => join(dir, 'blobs', digest.replace(':', '-'));

/** An Ollama models dir holding `tiny:latest`: the bytes Ollama itself writes (Go's key order, trailing newline). */
export async function layOut(t: TestContext, seed = 11): Promise<Laid> {
  const dir = await tempDir(t, 'mpk-ollama-');
  const gguf = fakeGguf(seed, 300_000);
  const layers: [string, Buffer, Record<string, string>?][] = [
    ['application/vnd.ollama.image.model', gguf],
    ['application/vnd.ollama.image.template', Buffer.from('{{ if .System }}<|system|>{{ .System }}<|end|>{{ end }}<|user|>{{ .Prompt }}<|end|><|assistant|>')],
    ['application/vnd.ollama.image.system', Buffer.from('You are a helpful assistant.')],
    ['application/vnd.ollama.image.license', Buffer.from('LLAMA 3.2 COMMUNITY LICENSE AGREEMENT\n')],
    ['application/vnd.ollama.image.params', Buffer.from('{"stop":["<|end|>"],"temperature":0.7}'), { from: 'registry.ollama.ai/library/base:latest' }],
  ];
  const descs = layers.map(([mediaType, b, extra]) => ({ mediaType, digest: digestBytes(b), size: b.length, ...extra }));
  const config = Buffer.from(
    `${JSON.stringify({ model_format: 'gguf', model_family: 'llama', model_families: ['llama'], model_type: '1.2B', file_type: 'Q4_K_M', architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: descs.map((d) => d.digest) } })}\n`,
  );
  const manifest = Buffer.from(
    `${JSON.stringify({ schemaVersion: 2, mediaType: DOCKER_MANIFEST, config: { mediaType: OLLAMA_CONFIG, digest: digestBytes(config), size: config.length }, layers: descs })}\n`,
  );
  const blobs = new Map<string, Buffer>([[digestBytes(config), config], ...layers.map(([, b]) => [digestBytes(b), b] as [string, Buffer])]);
  for (const [d, b] of blobs) {
    await mkdir(join(dir, 'blobs'), { recursive: true });
    await writeFile(blobPath(dir, d), b, { mode: 0o644 });
  }
  const manifestPath = join(dir, 'manifests', 'registry.ollama.ai', 'library', 'tiny', 'latest');
  await mkdir(dirname(manifestPath), { recursive: true });
  await writeFile(manifestPath, manifest);
  return { dir, manifestPath, manifest, blobs, gguf };
}

export async function storeBlobPath(root: string, digest: string): Promise<string> {
  return join(root, 'blobs', 'sha256', digest.slice('sha256:'.length));
}
