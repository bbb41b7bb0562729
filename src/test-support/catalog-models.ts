/**
 * Small ModelPack models pushed to a running `mpk serve` over HTTP, for the web catalog's tests,
 * screenshots and benchmark: a GGUF weight layer (a few bytes, not a real model), a README doc
 * layer (the model card), a ModelPack config, and optionally mpk's GGUF metadata annotation.
 */
import { createHash } from 'node:crypto';
import { buildModelConfig } from '../modelpack/config.js';
import { ANNOTATION_GGUF_METADATA, OCI_MANIFEST, filepathAnnotation, layerMediaType, modelConfigMediaType, modelManifestArtifactType } from '../oci/media-types.js';
import { putBlob, request } from './serve.js';

export interface TestModel {
  arch?: string;
  paramSize?: string;
  quantization?: string;
  format?: string;
  /** The README's text (none: no card). */
  readme?: string;
  /** More files: path → content (doc layers). */
  files?: Record<string, string>;
  /** Weight file name (default model.gguf). */
  weightName?: string;
  weightBytes?: number;
  annotations?: Record<string, string>;
  gguf?: Record<string, unknown>;
  licenses?: string[];
  createdAt?: string;
  headers?: Record<string, string>;
}

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Pushes one model as `name:tag`; returns its manifest digest. */
export async function pushTestModel(base: string, name: string, tag: string, m: TestModel = {}): Promise<string> {
  const h = m.headers ?? {};
  const weight = Buffer.alloc(m.weightBytes ?? 64, `${name}:${tag}`);
  const layers: Array<{ mediaType: string; digest: string; size: number; annotations: Record<string, string> }> = [];
  const add = async (kind: 'weight' | 'doc', path: string, bytes: Buffer): Promise<void> => {
    const digest = await putBlob(base, name, bytes, h);
    layers.push({ mediaType: layerMediaType(kind), digest, size: bytes.length, annotations: { [filepathAnnotation()]: path } });
  };
  await add('weight', m.weightName ?? 'model.gguf', weight);
  if (m.readme !== undefined) await add('doc', 'README.md', Buffer.from(m.readme));
  for (const [p, text] of Object.entries(m.files ?? {})) await add('doc', p, Buffer.from(text));
  const config = buildModelConfig({
    name: name.split('/').pop()!,
    arch: m.arch ?? 'llama',
    format: m.format ?? 'gguf',
    paramSize: m.paramSize ?? '1B',
    quantization: m.quantization ?? 'Q4_K_M',
    ...(m.createdAt ? { createdAt: m.createdAt } : {}),
    diffIds: layers.map((l) => l.digest),
  }) as unknown as { descriptor: Record<string, unknown> };
  if (m.licenses) config.descriptor.licenses = m.licenses;
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDigest = await putBlob(base, name, configBytes, h);
  const annotations = { ...(m.annotations ?? {}), ...(m.gguf ? { [ANNOTATION_GGUF_METADATA]: JSON.stringify(m.gguf) } : {}) };
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: modelManifestArtifactType(),
      config: { mediaType: modelConfigMediaType(), digest: configDigest, size: configBytes.length },
      layers,
      ...(Object.keys(annotations).length ? { annotations } : {}),
    }),
  );
  const r = await request(`${base}/v2/${name}/manifests/${tag}`, { method: 'PUT', body: manifest, headers: { 'content-type': OCI_MANIFEST, ...h } });
  if (r.status !== 201) throw new Error(`push ${name}:${tag}: ${r.status} ${r.text}`);
  return sha(manifest);
}

/** An index of already pushed manifests, tagged `tag`, each entry annotated with its quantization. */
export async function pushTestIndex(base: string, name: string, tag: string, entries: Array<{ digest: string; quantization: string }>, headers: Record<string, string> = {}): Promise<string> {
  const manifests = [];
  for (const e of entries) {
    const got = await request(`${base}/v2/${name}/manifests/${e.digest}`, { headers });
    manifests.push({ mediaType: OCI_MANIFEST, digest: e.digest, size: got.body.length, artifactType: modelManifestArtifactType(), annotations: { 'org.cncf.model.quantization': e.quantization } });
  }
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }));
  const r = await request(`${base}/v2/${name}/manifests/${tag}`, { method: 'PUT', body: bytes, headers: { 'content-type': 'application/vnd.oci.image.index.v1+json', ...headers } });
  if (r.status !== 201) throw new Error(`push index ${name}:${tag}: ${r.status} ${r.text}`);
  return sha(bytes);
}

/** A model card that tries every trick: script tags, event handlers, javascript: links, raw HTML. */
export const HOSTILE_README = [
  '# Hostile <script>window.__pwned = 1; alert("card")</script>',
  '',
  '<img src=x onerror="window.__pwned = 2; alert(2)">',
  '',
  '[click me](javascript:window.__pwned=3) and [data](data:text/html,<script>alert(4)</script>)',
  '',
  '<a href="javascript:alert(5)">raw link</a> <iframe src="javascript:alert(6)"></iframe>',
  '',
  '![pic](javascript:alert(7))',
  '',
  '```html',
  '<script>alert(8)</script>',
  '```',
].join('\n');
