/**
 * OCI content descriptors and their validation.
 * Reference: https://github.com/opencontainers/image-spec/blob/v1.1.1/descriptor.md
 */
import { PackError } from '../errors.js';
import { parseDigest } from './digest.js';

export interface Platform {
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
  features?: string[];
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  data?: string;
  artifactType?: string;
  platform?: Platform;
}

/** RFC 6838 media type, as the OCI schema checks it. */
const MEDIA_TYPE_RE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;

export function isMediaType(s: unknown): s is string {
  return typeof s === 'string' && MEDIA_TYPE_RE.test(s);
}

/** Checks every field a descriptor from outside may carry; `where` names it in errors. */
export function validateDescriptor(d: unknown, where: string): Descriptor {
  const bad = (what: string): never => {
    throw new PackError('INVALID_MANIFEST', `${where}: ${what}`);
  };
  if (!d || typeof d !== 'object' || Array.isArray(d)) bad('descriptor is not an object');
  const o = d as Record<string, unknown>;
  if (!isMediaType(o.mediaType)) bad(`invalid mediaType ${JSON.stringify(o.mediaType)}`);
  if (typeof o.digest !== 'string') bad('missing digest');
  try {
    parseDigest(o.digest as string);
  } catch (e) {
    throw new PackError('INVALID_MANIFEST', `${where}: ${(e as Error).message}`, { cause: e });
  }
  if (typeof o.size !== 'number' || !Number.isSafeInteger(o.size) || o.size < 0) {
    bad(`invalid size ${JSON.stringify(o.size)}`);
  }
  if (o.annotations !== undefined) validateAnnotations(o.annotations, where);
  if (o.artifactType !== undefined && !isMediaType(o.artifactType)) {
    bad(`invalid artifactType ${JSON.stringify(o.artifactType)}`);
  }
  if (o.urls !== undefined && (!Array.isArray(o.urls) || o.urls.some((u) => typeof u !== 'string'))) {
    bad('urls must be an array of strings');
  }
  if (o.data !== undefined && (typeof o.data !== 'string' || !/^[A-Za-z0-9+/]*=*$/.test(o.data))) {
    bad('data must be base64');
  }
  return o as unknown as Descriptor;
}

export function validateAnnotations(a: unknown, where: string): Record<string, string> {
  if (!a || typeof a !== 'object' || Array.isArray(a)) {
    throw new PackError('INVALID_MANIFEST', `${where}: annotations must be an object of strings`);
  }
  for (const [k, v] of Object.entries(a)) {
    if (typeof v !== 'string') {
      throw new PackError('INVALID_MANIFEST', `${where}: annotation ${k} is not a string`);
    }
  }
  return a as Record<string, string>;
}

/** The fields that identify content: two descriptors with the same key name the same bytes. */
export function descriptorKey(d: Descriptor): string {
  return `${d.mediaType}|${d.digest}|${d.size}`;
}

/** The descriptor without annotations or platform: what a store keys on. */
export function plainDescriptor(d: Descriptor): Descriptor {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size };
}
