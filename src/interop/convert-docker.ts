/**
 * `mpk convert REF --format docker -t NEWREF`: a Docker Model Runner artifact from a model in the
 * store (ModelPack or Ollama), made of the same blobs, so no byte is copied. What is new is a DMR
 * config (v0.1 for GGUF/DDUF, v0.2 for safetensors) and an OCI manifest whose layers carry DMR media
 * types chosen by file name as DMR's builder does, `org.cncf.model.filepath` and the file metadata.
 * Deterministic: `created` is the source's creation time or SOURCE_DATE_EPOCH, never "now", and the
 * JSON is canonical, so converting twice gives the same digest. `mpk push` then publishes it for
 * `docker model pull`. For GGUF the config says what DMR's packager reads from the header (from
 * the blobs' headers in the store, never their data): `parameters` (sum of tensor elements),
 * `size` (tensor data), `architecture`, `quantization`, `context_size`, and the `gguf` map of every
 * key as a string (arrays over 50 items left out); the source config fills in when a header
 * cannot be read, and a source quantization the header contradicts gives a warning.
 * Reference: ../shared/reference/peer-formats.md §1.1-1.3.
 */
import { basename } from 'node:path';
import { PackError } from '../errors.js';
import { canonicalJson, canonicalJsonBytes } from '../oci/canonical-json.js';
import type { Descriptor } from '../oci/descriptor.js';
import { digestBytes } from '../oci/digest.js';
import type { Manifest } from '../oci/manifest.js';
import { OCI_MANIFEST, fileMetadataAnnotation, filepathAnnotation } from '../oci/media-types.js';
import { creationTime } from '../modelpack/config.js';
import type { FileMetadata, ModelFile } from '../modelpack/model-view.js';
import type { LocalStore } from '../store/store.js';
import {
  ANNOTATION_MEDIATYPE_UNTESTED,
  DOCKER_AI_CHAT_TEMPLATE,
  DOCKER_AI_CONFIG_V01,
  DOCKER_AI_CONFIG_V02,
  DOCKER_AI_DDUF,
  DOCKER_AI_GGUF,
  DOCKER_AI_MMPROJ,
  DOCKER_AI_MODEL_FILE,
  DOCKER_AI_SAFETENSORS,
  buildDockerAiConfig,
  dockerAiMediaTypeFor,
  dockerAiSize,
} from './docker-ai.js';
import { loadModel } from './load-model.js';
import { readGgufHeader, GgufType, type GgufHeader, type GgufKv, type GgufValue } from '../formats/gguf.js';
import { describeGgufSet, type GgufDescription } from '../formats/gguf-describe.js';

export interface ConvertOptions {
  /** RFC 3339 creation time; default the source's, else SOURCE_DATE_EPOCH, else none. */
  createdAt?: string;
  env?: NodeJS.ProcessEnv;
}

export interface ConvertResult {
  source: string;
  reference: string;
  format: 'docker' | 'modelpack';
  manifest: Descriptor;
  config: Descriptor;
  layers: number;
  warnings: string[];
}

const WEIGHT_TYPES = [DOCKER_AI_GGUF, DOCKER_AI_SAFETENSORS, DOCKER_AI_DDUF];

export async function convertToDocker(store: LocalStore, source: string, target: string, opts: ConvertOptions = {}): Promise<ConvertResult> {
  const model = await loadModel(store, source);
  if (model.view.format === 'docker-ai') {
    throw new PackError('USAGE', `${source}: is already a Docker Model Runner artifact`, { hint: `use mpk tag ${source} ${target}` });
  }
  const warnings: string[] = [];
  const once = new Set<string>(); // DMR wants at most one chat template and one projector
  const layers: Descriptor[] = [];
  for (const f of model.view.files) {
    if (f.encoding === 'other' || f.encoding === 'tar+gzip' || f.encoding === 'tar+zstd') {
      throw new PackError('UNSUPPORTED', `${source}: ${f.path} is a ${f.encoding === 'other' ? `${f.layer.mediaType}` : f.encoding} layer, which Docker Model Runner cannot read`, {
        hint: 'rebuild the model without --group-small-files (DMR reads raw files and plain tar directories)',
      });
    }
    let mediaType = dockerAiMediaTypeFor(f.path, f.kind, f.encoding);
    if (mediaType === DOCKER_AI_CHAT_TEMPLATE || mediaType === DOCKER_AI_MMPROJ) {
      if (once.has(mediaType)) {
        warnings.push(`${f.path}: kept as a plain file (DMR takes one ${mediaType === DOCKER_AI_MMPROJ ? 'projector' : 'chat template'})`);
        mediaType = DOCKER_AI_MODEL_FILE;
      }
      once.add(mediaType);
    }
    layers.push({ mediaType, digest: f.layer.digest, size: f.layer.size, annotations: annotations(f) });
  }
  const weights = layers.filter((l) => WEIGHT_TYPES.includes(l.mediaType));
  if (weights.length === 0) {
    throw new PackError('UNSUPPORTED', `${source}: has no GGUF, safetensors or DDUF weight, so Docker Model Runner cannot run it`, {
      hint: 'convert models whose weights are .gguf, .safetensors or .dduf files',
    });
  }
  const format = weights.some((l) => l.mediaType === DOCKER_AI_GGUF) ? 'gguf' : weights.some((l) => l.mediaType === DOCKER_AI_SAFETENSORS) ? 'safetensors' : 'dduf';
  if (format === 'gguf' && weights.some((l) => l.mediaType === DOCKER_AI_SAFETENSORS)) warnings.push('the model has GGUF and safetensors weights: DMR runs the GGUF ones');
  const ggufs = weights.filter((l) => l.mediaType === DOCKER_AI_GGUF);
  if (ggufs.length > 1 && !ggufs.every((l) => /-\d{5}-of-\d{5}\.gguf$/.test(l.annotations![filepathAnnotation('cncf')]!))) {
    warnings.push(`${ggufs.length} GGUF files that are not named as shards (NAME-00001-of-0000N.gguf): DMR loads them as the shards of one model`);
  }
  // Weights first, as DMR's builder orders them (shard order kept); the rest as in the source.
  const ordered = [...weights, ...layers.filter((l) => !WEIGHT_TYPES.includes(l.mediaType))];
  const meta = model.meta;
  const weightBytes = weights.filter((l) => format !== 'gguf' || l.mediaType === DOCKER_AI_GGUF).reduce((n, l) => n + l.size, 0);
  const created = opts.createdAt ?? meta.created ?? creationTime(undefined, opts.env ?? {});
  const header = format === 'gguf' ? await readHeaders(store, ggufs, warnings) : undefined;
  const fromHeader = header?.description;
  if (fromHeader?.quantization && meta.quantization && !sameQuantization(meta.quantization, fromHeader.quantization)) {
    warnings.push(`${source}: its config says quantization ${meta.quantization}, the GGUF header ${fromHeader.quantization}; the DMR config takes the header's, as docker model package would`);
  }
  const dmr = buildDockerAiConfig({
    format,
    quantization: fromHeader?.quantization ?? meta.quantization ?? (format === 'safetensors' && meta.precision ? dtypeName(meta.precision) : undefined),
    parameters: fromHeader && header.counted ? dmrParameters(fromHeader.parameterCount) : meta.paramSize,
    architecture: fromHeader?.architecture ?? meta.architecture,
    size: dockerAiSize(Math.max(0, header?.dataBytes ?? weightBytes), format === 'gguf'),
    contextSize: fromHeader?.contextLength !== undefined && fromHeader.contextLength <= 0x7fffffff ? fromHeader.contextLength : meta.contextSize,
    created,
    diffIds: ordered.map((l) => l.digest), // raw files and plain tars: digest = diffID
  });
  if (header) dmr.config.gguf = dmrGgufMap(header.first);
  const configBytes = canonicalJsonBytes(dmr);
  const config: Descriptor = { mediaType: format === 'safetensors' ? DOCKER_AI_CONFIG_V02 : DOCKER_AI_CONFIG_V01, digest: digestBytes(configBytes), size: configBytes.length };
  const body: Manifest = { schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: ordered };
  const manifestBytes = canonicalJsonBytes(body);
  const manifest: Descriptor = { mediaType: OCI_MANIFEST, digest: digestBytes(manifestBytes), size: manifestBytes.length };
  await store.push(config, configBytes);
  for (const l of ordered) await store.blobs.hold(l.digest); // in use by this conversion until tagged
  await store.push(manifest, manifestBytes);
  await store.tag(manifest, target);
  return { source, reference: target, format: 'docker', manifest, config, layers: ordered.length, warnings };
}

/** A torch dtype (`bfloat16`) as safetensors headers and DMR's config name it (`BF16`). */
function dtypeName(precision: string): string {
  const known: Record<string, string> = { bfloat16: 'BF16', float16: 'F16', half: 'F16', fp16: 'F16', float32: 'F32', float: 'F32', fp32: 'F32', float64: 'F64', float8_e4m3fn: 'F8_E4M3', float8_e5m2: 'F8_E5M2' };
  return known[precision.toLowerCase()] ?? precision.toUpperCase();
}

/** DMR's layer annotations: the path, the file metadata, and "media type tested". */
function annotations(f: ModelFile): Record<string, string> {
  const md: FileMetadata = f.metadata ?? { name: basename(f.path), mode: 0o644, uid: 0, gid: 0, size: f.layer.size, mtime: '1970-01-01T00:00:00Z', typeflag: 0 };
  return {
    [filepathAnnotation('cncf')]: f.path,
    [fileMetadataAnnotation('cncf')]: canonicalJson(md),
    [ANNOTATION_MEDIATYPE_UNTESTED]: 'false',
  };
}

interface HeaderInfo {
  description: GgufDescription;
  /** false when the shards do not make a whole model: the parameter count is not used */
  counted: boolean;
  /** the shard holding the model's keys */
  first: GgufHeader;
  /** tensor data over all shards (file sizes less headers and padding), as DMR's size counts */
  dataBytes: number;
}

/** The GGUF headers of the weight blobs in the store (never their data); undefined, with a warning, when one cannot be read. */
async function readHeaders(store: LocalStore, layers: Descriptor[], warnings: string[]): Promise<HeaderInfo | undefined> {
  const headers: GgufHeader[] = [];
  for (const l of layers) {
    try {
      headers.push(await readGgufHeader(store.blobs.path(l.digest)));
    } catch (e) {
      if (!(e instanceof PackError)) throw e;
      warnings.push(`${l.annotations?.[filepathAnnotation('cncf')] ?? l.digest}: GGUF header not read (${e.message}); the DMR config takes the source config's fields`);
      return undefined;
    }
  }
  const { first, description, problem } = describeGgufSet(headers);
  if (problem) warnings.push(`GGUF shards: ${problem.message}; parameters taken from the source config`);
  const counted = !problem;
  const dataBytes = headers.reduce((n, h) => n + (h.fileSize - h.dataOffset), 0);
  return { description, counted, first, dataBytes };
}

/** gguf-parser's parameter count as DMR writes it: two decimals and a unit, no space (`361.82M`, `7.24B`). */
export function dmrParameters(n: number): string {
  const units: Array<[number, string]> = [[1e12, 'T'], [1e9, 'B'], [1e6, 'M'], [1e3, 'K']];
  for (const [scale, unit] of units) if (n >= scale) return `${(n / scale).toFixed(2)}${unit}`;
  return String(n);
}

/** DMR's `gguf` map: every key as a string (Go's %d, %f, %t; arrays joined by ", "), arrays over 50 items left out. */
export function dmrGgufMap(h: GgufHeader): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, kv] of h.metadata) {
    if (kv.type === GgufType.ARRAY && (kv.value as { items: unknown[] }).items.length > 50) continue;
    Object.defineProperty(out, k, { value: dmrString(kv), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function dmrString(kv: GgufKv): string {
  if (kv.type === GgufType.ARRAY) {
    const a = kv.value as { elementType: GgufType; items: GgufValue[] };
    if (a.elementType === GgufType.ARRAY) return a.items.map(() => '').join(', '); // DMR writes nothing for nested arrays
    return a.items.map((v) => dmrString({ type: a.elementType, value: v })).join(', ');
  }
  if (kv.type === GgufType.FLOAT32 || kv.type === GgufType.FLOAT64) {
    const f = kv.value as number;
    return Number.isFinite(f) ? f.toFixed(6) : Number.isNaN(f) ? 'NaN' : f > 0 ? '+Inf' : '-Inf';
  }
  return String(kv.value);
}

function sameQuantization(a: string, b: string): boolean {
  const words = (s: string) => s.split('/').map((x) => x.trim().toUpperCase());
  return words(a).some((x) => words(b).includes(x));
}
