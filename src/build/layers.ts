/**
 * Layer descriptors for packaged files: media type by kind, and the annotations every layer
 * carries (`org.cncf.model.filepath`, `org.opencontainers.image.title`,
 * `org.cncf.model.file.metadata+json`). File metadata is normalised unless asked otherwise, so the
 * same bytes give the same digests whatever their mtime, owner or the builder's umask.
 */
import { basename } from 'node:path';
import type { BigIntStats } from 'node:fs';
import type { Descriptor } from '../oci/descriptor.js';
import { canonicalJson } from '../oci/canonical-json.js';
import { ANNOTATION_TITLE, fileMetadataAnnotation, filepathAnnotation, layerMediaType, type LayerKind, type ModelFamily } from '../oci/media-types.js';
import type { FileMetadata } from '../modelpack/model-view.js';

export const EPOCH = '1970-01-01T00:00:00Z';

/** 0755 when any execute bit is set, else 0644: all that survives normalisation. */
export function normalisedMode(mode: number): number {
  return mode & 0o111 ? 0o755 : 0o644;
}

export function fileMetadata(path: string, s: BigIntStats, keep: boolean): FileMetadata {
  const size = Number(s.size);
  const mode = Number(s.mode) & 0o7777;
  if (!keep) return { name: basename(path), mode: normalisedMode(mode), uid: 0, gid: 0, size, mtime: EPOCH, typeflag: 0 };
  const mtime = new Date(Number(s.mtimeNs / 1_000_000n)).toISOString();
  return { name: basename(path), mode: mode & 0o777, uid: Number(s.uid), gid: Number(s.gid), size, mtime, typeflag: 0 };
}

export interface LayerInput {
  kind: LayerKind;
  path: string;
  digest: string;
  size: number;
  metadata: FileMetadata;
  /** raw (one file) unless a directory of small files was packed as one tar layer. */
  encoding?: 'raw' | 'tar';
}

export function layerDescriptor(l: LayerInput, family: ModelFamily): Descriptor {
  return {
    mediaType: layerMediaType(l.kind, l.encoding ?? 'raw', family),
    digest: l.digest,
    size: l.size,
    annotations: {
      [filepathAnnotation(family)]: l.path,
      [fileMetadataAnnotation(family)]: canonicalJson(l.metadata),
      [ANNOTATION_TITLE]: l.path,
    },
  };
}
