/**
 * Choosing one manifest of an index for a pull: by `--platform os/arch[/variant]`, by
 * `--variant` (an annotation value such as a quantization, or `key=value`), or the only one; with
 * neither, among model variants that say their quantization and weight bytes (mpk index create),
 * the highest precision whose weights fit the memory available (precision.ts); else an error
 * that lists what there is to choose from. Through nested indexes: chooseNested.
 */
import { freemem } from 'node:os';
import { PackError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { isManifestLike, parseManifest, type Index } from '../oci/manifest.js';
import { ANNOTATION_QUANTIZATION, ANNOTATION_WEIGHT_BYTES, isIndexMediaType } from '../oci/media-types.js';
import { chooseByMemory, precisionName, type Candidate } from './precision.js';
import type { Manifest } from '../oci/manifest.js';

export interface Selection {
  platform?: string;
  variant?: string;
  /** Bytes of memory available for the automatic choice (default: os.freemem()). */
  memory?: number;
}

export interface Choice {
  descriptor: Descriptor;
  /** Set when the variant was chosen by memory: what was chosen and why, for the user. */
  reason?: string;
}

const NODE_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x' };

export function hostPlatform(): string {
  return `${process.platform}/${NODE_ARCH[process.arch] ?? process.arch}`;
}

function platformOf(d: Descriptor): string | undefined {
  if (!d.platform) return undefined;
  return [d.platform.os, d.platform.architecture, d.platform.variant].filter(Boolean).join('/');
}

function matchesVariant(d: Descriptor, variant: string): boolean {
  const a = d.annotations ?? {};
  const eq = variant.indexOf('=');
  if (eq > 0) return a[variant.slice(0, eq)] === variant.slice(eq + 1);
  const want = variant.toLowerCase();
  return Object.values(a).some((v) => v.toLowerCase() === want);
}

function describe(d: Descriptor): string {
  const a = d.annotations ?? {};
  const hint = platformOf(d) ?? a['org.cncf.model.quantization'] ?? a['org.opencontainers.image.title'] ?? Object.values(a)[0];
  return hint ? `${hint} (${d.digest.slice(0, 19)})` : d.digest.slice(0, 19);
}

export function selectManifest(index: Index, sel: Selection, where: string): Descriptor {
  return chooseManifest(index, sel, where).descriptor;
}

/** The weight bytes an entry's annotation gives, or undefined. */
function weightBytesOf(d: Descriptor): number | undefined {
  const text = d.annotations?.[ANNOTATION_WEIGHT_BYTES];
  const n = text !== undefined && /^\d+$/.test(text) ? Number(text) : NaN;
  return Number.isSafeInteger(n) ? n : undefined;
}

export function chooseManifest(index: Index, sel: Selection, where: string): Choice {
  const chosen = pick(index, sel, where);
  if (!isManifestLike(chosen.descriptor.mediaType)) {
    throw new PackError('INVALID_MANIFEST', `${where}: index entry ${chosen.descriptor.digest} is a ${chosen.descriptor.mediaType}, not a manifest or index`);
  }
  return chosen;
}

function pick(index: Index, sel: Selection, where: string): Choice {
  let candidates = index.manifests;
  if (sel.platform) {
    const want = sel.platform;
    candidates = candidates.filter((d) => {
      const p = platformOf(d);
      return p !== undefined && (p === want || p.startsWith(`${want}/`));
    });
  }
  if (sel.variant) candidates = candidates.filter((d) => matchesVariant(d, sel.variant!));
  if (!sel.platform && !sel.variant && candidates.length > 1) {
    // Entries for another platform drop out; those without a platform suit any machine.
    const host = candidates.filter((d) => {
      const p = platformOf(d);
      return p === undefined || p.startsWith(hostPlatform());
    });
    if (host.length >= 1) candidates = host;
  }
  if (candidates.length === 1) return { descriptor: candidates[0]! };
  let memoryReason: string | undefined;
  if (!sel.platform && !sel.variant && candidates.length > 1) {
    const models: Candidate<Descriptor>[] = [];
    for (const d of candidates) {
      const name = d.annotations?.[ANNOTATION_QUANTIZATION];
      const weightBytes = weightBytesOf(d);
      if (name && weightBytes !== undefined) models.push({ item: d, name, weightBytes });
    }
    if (models.length > 1) {
      const memory = sel.memory ?? freemem();
      const r = chooseByMemory(models, memory);
      if (r.choice) return { descriptor: r.choice.chosen.item, reason: r.choice.reason };
      memoryReason = r.reason;
    }
  }
  const list = index.manifests.map(describe).join(', ');
  if (candidates.length === 0) {
    throw new PackError('NOT_FOUND', `${where}: no manifest in the index matches ${[sel.platform, sel.variant].filter(Boolean).join(' ')}`, { hint: `the index holds: ${list}` });
  }
  if (memoryReason) {
    throw new PackError('USAGE', `${where}: ${memoryReason}`, { hint: `choose one with --variant VALUE, or say how much memory to assume with --memory SIZE; the index holds: ${list}` });
  }
  if (sel.platform && sel.variant) {
    throw new PackError('USAGE', `${where}: ${candidates.length} manifests of the index match both --variant ${sel.variant} and --platform ${sel.platform}; choose one`, {
      hint: `use --variant KEY=VALUE to be precise; the index holds: ${list}`,
    });
  }
  throw new PackError('USAGE', `${where}: the index holds ${candidates.length} manifests; choose one`, {
    hint: `use --variant VALUE or --platform OS/ARCH; the index holds: ${list}`,
  });
}

/**
 * Whether one model (not an index) is what `--variant` names: KEY=VALUE against its manifest's
 * annotations; a bare value against those, the string fields of its config (ModelPack and Docker
 * Model Runner `config.*`, Ollama's top-level `file_type`, ...) and its precision's type name
 * (`float16` → F16), case-insensitively. `config` is the config blob's bytes, when read.
 */
export function manifestMatchesVariant(m: Manifest, config: Uint8Array | undefined, variant: string): boolean {
  const a = m.annotations ?? {};
  const eq = variant.indexOf('=');
  if (eq > 0) return a[variant.slice(0, eq)] === variant.slice(eq + 1);
  const values = Object.values(a);
  let doc: unknown;
  try {
    doc = config ? JSON.parse(Buffer.from(config).toString('utf8')) : undefined;
  } catch {
    doc = undefined;
  }
  const strings = (o: unknown) => (o && typeof o === 'object' && !Array.isArray(o) ? Object.values(o).filter((x): x is string => typeof x === 'string') : []);
  const inner = (doc as { config?: unknown } | undefined)?.config;
  values.push(...strings(doc), ...strings(inner));
  for (const v of strings(inner)) {
    const name = precisionName(v);
    if (name) values.push(name);
  }
  const want = variant.toLowerCase();
  return values.some((v) => v.toLowerCase() === want);
}

/** Nested indexes followed at most by chooseNested (as the copy walk allows). */
const MAX_SELECT_LEVELS = 8;

/**
 * chooseManifest through nested indexes (platforms of quantizations, say): an entry that is an
 * index is chosen from in turn, each rule applying at the level whose entries satisfied it
 * (`--platform` picks the platform's index, `--variant` a manifest inside it); with neither, the
 * automatic choice at each level. `read` gives a chosen index's verified bytes. Ends at a manifest
 * (not read).
 */
export async function chooseNested(index: Index, sel: Selection, where: string, read: (d: Descriptor) => Promise<Buffer>): Promise<Choice> {
  let current = index;
  let rest: Selection = { ...sel };
  const reasons: string[] = [];
  for (let level = 1; ; level++) {
    const bad = current.manifests.find((e) => !isManifestLike(e.mediaType));
    if (bad) throw new PackError('INVALID_MANIFEST', `${where}: index entry ${bad.digest} is a ${bad.mediaType}, not a manifest or index`, { hint: 'nothing was stored' });
    // A rule no entry of this level can satisfy waits for the level below, when there is one.
    const here: Selection = { ...rest };
    if (current.manifests.some((e) => isIndexMediaType(e.mediaType))) {
      if (here.variant && !current.manifests.some((e) => matchesVariant(e, here.variant!))) delete here.variant;
      if (here.platform && !current.manifests.some((e) => platformOf(e) !== undefined)) delete here.platform;
    }
    const choice = chooseManifest(current, here, where);
    if (choice.reason) reasons.push(choice.reason);
    const d = choice.descriptor;
    if (!isIndexMediaType(d.mediaType)) return { descriptor: d, ...(reasons.length ? { reason: reasons.join('; then ') } : {}) };
    if (level >= MAX_SELECT_LEVELS) throw new PackError('INVALID_MANIFEST', `${where}: indexes nested more than ${MAX_SELECT_LEVELS} deep`, { hint: 'nothing was stored' });
    const parsed = parseManifest(await read(d), d.mediaType, d.digest);
    if (parsed.kind !== 'index') throw new PackError('INVALID_MANIFEST', `${where}: entry ${d.digest} says it is an index but is not one`);
    current = parsed.index;
    // A rule the chosen entry satisfied is used up; the others apply further down.
    rest = { ...rest };
    if (here.platform) delete rest.platform;
    if (here.variant) delete rest.variant;
  }
}
