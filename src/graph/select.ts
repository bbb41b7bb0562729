/**
 * Choosing one manifest of an index for a pull: by `--platform os/arch[/variant]`, by
 * `--variant` (an annotation value such as a quantization, or `key=value`), or the only one; else
 * an error that lists what there is to choose from.
 */
import { PackError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { Index } from '../oci/manifest.js';

export interface Selection {
  platform?: string;
  variant?: string;
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
    const host = candidates.filter((d) => platformOf(d)?.startsWith(hostPlatform()));
    if (host.length === 1) candidates = host;
  }
  if (candidates.length === 1) return candidates[0]!;
  const list = index.manifests.map(describe).join(', ');
  if (candidates.length === 0) {
    throw new PackError('NOT_FOUND', `${where}: no manifest in the index matches ${[sel.platform, sel.variant].filter(Boolean).join(' ')}`, { hint: `the index holds: ${list}` });
  }
  throw new PackError('USAGE', `${where}: the index holds ${candidates.length} manifests; choose one`, {
    hint: `use --variant VALUE or --platform OS/ARCH; the index holds: ${list}`,
  });
}
