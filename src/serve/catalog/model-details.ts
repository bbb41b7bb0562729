/**
 * Everything the model page shows of one manifest (or index) of a repository: inspect's deep
 * description (config, GGUF metadata, files), the model card (the README among its doc layers,
 * rendered), the referrers, and the commands that pull it. The same object is the JSON API's.
 */
import type { Descriptor } from '../../oci/descriptor.js';
import { isRfc3339 } from '../../interop/metadata.js';
import { describeModel } from '../../modelpack/inspect.js';
import type { RegistryStorage } from '../storage.js';
import { readSmallBlob } from './blob-text.js';
import { renderMarkdown } from './markdown.js';
import { factsOf, repoSource, type VariantFacts } from './model-source.js';

/** Cards larger than this are not shown (the file list still names them). */
export const MAX_CARD_BYTES = 512 * 1024;
const MAX_GGUF_ENTRIES = 400;
const MAX_VALUE_CHARS = 300;
const MAX_REFERRERS_BYTES = 256 * 1024;

export interface FileRow {
  path: string;
  kind: string;
  encoding: string;
  size: number;
  mediaType: string;
  digest: string;
}

export interface Referrer {
  digest: string;
  mediaType: string;
  artifactType?: string;
  size: number;
  annotations?: Record<string, string>;
}

export interface ModelDetailsView {
  repository: string;
  reference: string;
  digest: string;
  mediaType: string;
  kind: string;
  size: number;
  /** Label → value, in the order shown. */
  metadata: Array<[string, string]>;
  /** The GGUF header's keys, values as text (long ones cut). */
  gguf: Array<[string, string]>;
  annotations: Record<string, string>;
  files: FileRow[];
  variants?: VariantFacts[];
  referrers: Referrer[];
  card?: { path: string; markdown: string; html: string };
  /** The config as stored (JSON), when small and readable. */
  config?: unknown;
}

export async function modelDetails(store: RegistryStorage, name: string, reference: string, digest: string): Promise<ModelDetailsView | undefined> {
  const stored = await store.getManifest(name, digest);
  if (!stored) return undefined;
  const desc: Descriptor = { mediaType: stored.mediaType, digest, size: stored.bytes.length };
  const source = repoSource(store, name);
  const d = await describeModel(source, `${name}:${reference}`, desc, true).catch(() => undefined);
  const { manifests: refs } = await store.listReferrers(name, digest, { maxBytes: MAX_REFERRERS_BYTES }).catch(() => ({ manifests: [] as Descriptor[] }));
  const referrers = refs.map((r): Referrer => ({ digest: r.digest, mediaType: r.mediaType, size: r.size, ...(r.artifactType ? { artifactType: r.artifactType } : {}), ...(r.annotations ? { annotations: r.annotations } : {}) }));
  const view: ModelDetailsView = {
    repository: name,
    reference,
    digest,
    mediaType: stored.mediaType,
    kind: d?.kind ?? 'unreadable',
    size: d?.size ?? stored.bytes.length,
    metadata: [],
    gguf: [],
    annotations: stringMap(d?.manifest.annotations),
    files: (d?.files ?? []).map((f) => ({ path: f.path, kind: f.kind, encoding: f.encoding, size: f.size, mediaType: f.mediaType, digest: f.digest })),
    referrers,
  };
  if (!d) return view;
  if (d.config !== undefined) view.config = d.config;
  if (d.kind === 'index') {
    const facts = await factsOf(store, name, digest);
    if (facts.variants) view.variants = facts.variants;
    view.size = facts.size;
  }
  const gguf = d.ggufMetadata ?? {};
  const cfg = (d.config ?? {}) as { descriptor?: Record<string, unknown>; config?: Record<string, unknown> };
  const desc2 = cfg.descriptor && typeof cfg.descriptor === 'object' ? cfg.descriptor : {};
  const licences = Array.isArray(desc2.licenses) ? desc2.licenses.filter((x): x is string => typeof x === 'string').join(', ') : undefined;
  const arch = typeof gguf['general.architecture'] === 'string' ? gguf['general.architecture'] : undefined;
  const rows: Array<[string, unknown]> = [
    ['Name', d.name ?? gguf['general.name']],
    ['Architecture', d.architecture ?? arch],
    ['Family', desc2.family],
    ['Format', d.format],
    ['Parameters', d.paramSize],
    ['Quantization', d.quantization],
    ['Precision', d.precision],
    ['Context length', d.contextLength],
    ['Layers', arch ? gguf[`${arch}.block_count`] : undefined],
    ['Embedding length', arch ? gguf[`${arch}.embedding_length`] : undefined],
    ['Tokenizer', gguf['tokenizer.ggml.model']],
    ['Licence', licences || gguf['general.license']],
    ['Created', isRfc3339(desc2.createdAt) ? desc2.createdAt : undefined],
    ['Version', desc2.version],
    ['Source', desc2.sourceURL],
    ['Artifact type', d.artifactType],
  ];
  view.metadata = rows.filter(([, v]) => typeof v === 'string' || typeof v === 'number').map(([k, v]) => [k, clip(String(v))]);
  view.gguf = Object.entries(gguf)
    .slice(0, MAX_GGUF_ENTRIES)
    .map(([k, v]) => [clip(k), clip(typeof v === 'string' ? v : JSON.stringify(v) ?? '')]);
  const card = pickCard(view.files);
  if (card) {
    const bytes = await readSmallBlob(store, name, card.digest, MAX_CARD_BYTES);
    if (bytes) {
      const markdown = bytes.toString('utf8');
      view.card = { path: card.path, markdown, html: renderMarkdown(markdown) };
    }
  }
  return view;
}

/** The README among the doc layers (a top-level one first), stored as its own bytes. */
function pickCard(files: FileRow[]): FileRow | undefined {
  const readmes = files.filter((f) => f.encoding === 'raw' && f.size <= MAX_CARD_BYTES && /(^|\/)readme(\.md|\.markdown|\.txt)?$/i.test(f.path));
  readmes.sort((a, b) => Number(b.kind === 'doc') - Number(a.kind === 'doc') || a.path.split('/').length - b.path.split('/').length);
  return readmes[0];
}

function clip(s: string): string {
  return s.length > MAX_VALUE_CHARS ? `${s.slice(0, MAX_VALUE_CHARS)}…` : s;
}

function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!v || typeof v !== 'object') return out;
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) if (typeof x === 'string') out[k] = x;
  return out;
}

/** The commands that get this model, for `host` (the registry as the viewer reached it). */
export function pullCommands(host: string, name: string, reference: string, d: Pick<ModelDetailsView, 'kind' | 'metadata'> & { format?: string }): Array<{ label: string; command: string }> {
  const ref = reference.includes(':') ? `${host}/${name}@${reference}` : `${host}/${name}:${reference}`;
  const out = [{ label: 'mpk', command: `mpk pull ${ref}` }];
  const format = (d.format ?? d.metadata.find(([k]) => k === 'Format')?.[1] ?? '').toLowerCase();
  const gguf = format === 'gguf';
  const tag = reference.includes(':') ? 'latest' : reference;
  if (d.kind === 'docker-ai') out.push({ label: 'Docker Model Runner', command: `docker model pull ${ref}` });
  else if (gguf && (d.kind === 'modelpack' || d.kind === 'index')) {
    const dmr = `${host}/${name}:${tag}-docker`;
    out.push({ label: 'Docker Model Runner', command: steps(`mpk pull ${ref}`, `mpk convert ${ref} --format docker -t ${dmr}`, `mpk push ${dmr}`, `docker model pull ${dmr}`) });
  }
  if (d.kind === 'ollama' && name.split('/').length === 2) out.push({ label: 'Ollama', command: `ollama pull ${ref}` });
  else if (gguf || d.kind === 'ollama') {
    const local = `${name.split('/').pop()}:${tag}`;
    out.push({ label: 'Ollama', command: steps(`mpk pull ${ref}`, `mpk export ollama ${ref} ${local}`, `ollama run ${local}`) });
  }
  return out;
}

/** Shell commands run one after the other, one to a line. */
function steps(...cmds: string[]): string {
  return cmds.join(' && \\\n');
}
