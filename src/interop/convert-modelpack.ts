/**
 * `mpk convert REF --format modelpack -t NEWREF`: a CNCF ModelPack artifact from a Docker Model
 * Runner or Ollama model in the store, made of the same blobs (raw files stay `.raw` layers, DMR's
 * tar directories become `.tar` layers). Config and manifest are written as `mpk build` writes them.
 */
import { basename } from 'node:path';
import { PackError } from '../errors.js';
import { EPOCH, layerDescriptor } from '../build/layers.js';
import { packModel } from '../build/pack.js';
import { creationTime } from '../modelpack/config.js';
import type { LocalStore } from '../store/store.js';
import type { ConvertOptions, ConvertResult } from './convert-docker.js';
import { loadModel } from './load-model.js';

export async function convertToModelPack(store: LocalStore, source: string, target: string, opts: ConvertOptions = {}): Promise<ConvertResult> {
  const model = await loadModel(store, source);
  if (model.view.format === 'modelpack') {
    throw new PackError('USAGE', `${source}: is already a ModelPack artifact`, { hint: `use mpk tag ${source} ${target}` });
  }
  const warnings: string[] = [];
  const layers = model.view.files.map((f) => {
    if (f.encoding !== 'raw' && f.encoding !== 'tar') {
      throw new PackError('UNSUPPORTED', `${source}: layer ${f.layer.digest} (${f.layer.mediaType}) is not a file mpk can place in a ModelPack artifact`, {
        hint: 'convert models whose layers are all known Docker Model Runner or Ollama files',
      });
    }
    if (f.kind === 'other') warnings.push(`${f.path}: ${f.layer.mediaType} has no ModelPack kind: stored as a doc layer`);
    return layerDescriptor(
      {
        kind: f.kind === 'other' ? 'doc' : f.kind,
        path: f.path,
        digest: f.layer.digest,
        size: f.layer.size,
        metadata: f.metadata ?? { name: basename(f.path), mode: 0o644, uid: 0, gid: 0, size: f.layer.size, mtime: EPOCH, typeflag: 0 },
        encoding: f.encoding,
      },
      'cncf',
    );
  });
  const meta = model.meta;
  const createdAt = opts.createdAt ?? meta.created ?? creationTime(undefined, opts.env ?? {});
  for (const l of layers) await store.blobs.hold(l.digest); // in use by this conversion until tagged
  const packed = await packModel(store, {
    layers,
    mediaTypes: 'cncf',
    name: meta.name,
    family: meta.family,
    arch: meta.architecture,
    format: meta.format,
    paramSize: meta.paramSize,
    precision: meta.precision,
    quantization: meta.quantization,
    createdAt,
  });
  await store.tag(packed.manifest, target);
  return { source, reference: target, format: 'modelpack', manifest: packed.manifest, config: packed.config, layers: layers.length, warnings };
}
