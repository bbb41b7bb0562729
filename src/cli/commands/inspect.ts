/** `mpk inspect REF`: a model in the store, or in a registry (manifests and configs only). */
import { inspectModel, type ModelDetails, type StoredDetails } from '../../modelpack/inspect.js';
import type { ModelConfig } from '../../modelpack/config.js';
import { hasErrorCode, PackError } from '../../errors.js';
import { parseReference } from '../../oci/reference.js';
import { inspectRemote, MAX_VARIANTS, type RemoteDetails, type VariantDetails } from '../../transfer/remote-inspect.js';
import type { CommandSpec, Ctx } from '../context.js';
import { humanBytes, paramSizeText, plural, table } from '../format.js';
import { transferOptions } from '../registry-flags.js';
import { withStore } from '../store.js';

/** Values wider than this are cut on the text display (--json gives them whole). */
const VALUE_WIDTH = 72;

export const inspect: CommandSpec = {
  name: 'inspect',
  usage: 'mpk inspect REF [--json] [--remote]',
  summary:
    "Show a model's manifest digest, config, what its weights' headers say (format, architecture,\nparameters, precision, quantization, context size, GGUF metadata keys) and its files.\n" +
    'A REF with a registry host that the store does not hold is read from the registry: manifests,\nconfigs and the GGUF metadata only, never a weight; an index shows every variant.',
  help: [
    '--json               print manifest, config, files and every GGUF metadata value as JSON',
    '--remote             read REF from its registry even when the store holds that name',
    '--plain-http         use http:// (default only for localhost and 127.0.0.1)',
    '--insecure           accept any TLS certificate (test registries only)',
    '--ca-file FILE       also trust the CA certificates in this PEM file',
    '--stall-timeout SEC  give up a connection that moves no data for this long (default 60)',
  ],
  options: {
    json: { type: 'boolean' },
    remote: { type: 'boolean' },
    'plain-http': { type: 'boolean' },
    insecure: { type: 'boolean' },
    'ca-file': { type: 'string' },
    'stall-timeout': { type: 'string' },
  },
  args: [1, 1],
  async run(ctx, v, [ref]) {
    const host = parseReference(ref!).registry;
    if (v.remote && !host) throw new PackError('USAGE', `${ref}: --remote needs a reference with a registry host`, { hint: 'write HOST[:PORT]/NAME:TAG' });
    const d: StoredDetails | RemoteDetails = await withStore(ctx, async (s) => {
      if (v.remote) return inspectRemote(ref!, transferOptions(ctx, v), s);
      // A name with a host is what pull stored it under: the store first, else the registry.
      const local = await inspectModel(s, ref!).catch((e: unknown) => {
        if (host && hasErrorCode(e, 'NOT_FOUND')) return undefined;
        throw e;
      });
      return local ?? inspectRemote(ref!, transferOptions(ctx, v), s);
    });
    if (v.json) {
      ctx.stdout.write(JSON.stringify(d, null, 2) + '\n');
      return 0;
    }
    printDetails(ctx, d);
    if (!('fetchedBytes' in d)) printStoredVariants(ctx, d);
    if ('fetchedBytes' in d) {
      const r = d as RemoteDetails;
      const variants = r.variantDetails;
      if (variants) {
        for (const [i, x] of variants.entries()) {
          ctx.stdout.write(`\n── Variant ${i + 1} of ${variants.length}: ${variantName(x)}\n`);
          if (x.error) ctx.stdout.write(`${'Digest:'.padEnd(15)}${x.digest}\n${'Error:'.padEnd(15)}${x.error}\n`);
          else printDetails(ctx, x as ModelDetails);
        }
        if (r.variantsNotRead) ctx.stdout.write(`\n${plural(r.variantsNotRead, 'more variant')} not read (only the first ${MAX_VARIANTS} are)\n`);
      }
      const what = variants ? `the index and its ${plural(variants.length, 'variant')} hold ${humanBytes(r.modelBytes)}` : `the model is ${humanBytes(r.modelBytes)}`;
      ctx.stdout.write(`\nfetched ${humanBytes(r.fetchedBytes)} of metadata; ${what}\n`);
    }
    return 0;
  },
};

/** How an index entry is named: its platform, quantization or title annotation, else its digest. */
function variantName(x: VariantDetails): string {
  const a = x.annotations ?? {};
  const label = x.platform ?? a['org.cncf.model.quantization'] ?? x.quantization ?? a['org.opencontainers.image.title'];
  return label ? `${oneLine(label)} (${x.digest.slice(0, 19)}, ${humanBytes(x.size)})` : `${x.digest.slice(0, 19)} (${humanBytes(x.size)})`;
}

/** A stored index's entries: what each says of its variant, and whether the store holds it. */
function printStoredVariants(ctx: Ctx, d: StoredDetails): void {
  if (!d.variants?.length) return;
  ctx.stdout.write(`\nVariants (${d.variants.length}):\n`);
  const rows = d.variants.map((x) => [x.quantization ?? '-', x.format ?? '-', x.paramSize ? paramSizeText(x.paramSize) : '-', x.weightBytes === undefined ? '-' : humanBytes(x.weightBytes), x.platform ?? '-', x.digest.slice(0, 19), x.stored ? 'yes' : 'no']);
  ctx.stdout.write(table(['QUANTIZATION', 'FORMAT', 'PARAMS', 'WEIGHTS', 'PLATFORM', 'DIGEST', 'STORED'], rows));
}

/** The text view of one manifest or index (local and remote alike). */
function printDetails(ctx: Ctx, d: ModelDetails): void {
  const cfg = (d.kind === 'modelpack' ? d.config : undefined) as ModelConfig | undefined;
  const fields: [string, string | undefined][] = [
    ['Reference', d.reference],
    ['Digest', d.digest],
    ['Artifact type', d.artifactType],
    ['Kind', d.kind],
    ['Size', humanBytes(d.size)],
    ['Name', cfg?.descriptor.name],
    ['Family', cfg?.descriptor.family],
    ['Created', cfg?.descriptor.createdAt],
    ['Architecture', cfg?.config.architecture ?? d.architecture],
    ['Format', cfg?.config.format ?? d.format],
    ['Parameters', shownParams(cfg?.config.paramSize ?? d.paramSize)],
    ['Precision', cfg?.config.precision ?? d.precision],
    ['Quantization', cfg?.config.quantization ?? d.quantization],
    ['Context size', d.contextLength?.toString()],
  ];
  for (const [k, val] of fields) if (val) ctx.stdout.write(`${`${k}:`.padEnd(15)}${val}\n`);
  const md = d.ggufMetadata ? Object.entries(d.ggufMetadata) : [];
  if (md.length > 0) {
    ctx.stdout.write(`\nGGUF metadata (${plural(md.length, 'key')}; --json for every value):\n`);
    const width = Math.min(40, Math.max(...md.map(([k]) => k.length)));
    for (const [k, val] of md) ctx.stdout.write(`  ${oneLine(k).padEnd(width)}  ${cut(shown(val))}\n`);
  }
  if (d.files.length > 0) {
    ctx.stdout.write(`\nFiles (${d.files.length}):\n`);
    ctx.stdout.write(table(['TYPE', 'SIZE', 'DIGEST', 'PATH'], d.files.map((f) => [f.kind, humanBytes(f.size), f.digest.slice(0, 19), f.encoding === 'raw' || f.encoding === 'other' ? f.path : `${f.path}/ (${f.encoding})`])));
  }
}

/** `5.00M`, `1.23 M`, `0.5B` shown one way (`5M`, `1.23M`, `500M`); --json keeps the config's text. */
function shownParams(v: string | undefined): string | undefined {
  return v ? paramSizeText(v) : undefined;
}

/** A metadata value on one line: summaries as `[128256 × string]` or `<string, 12345 bytes>`. */
function shown(v: unknown): string {
  if (typeof v === 'string') return oneLine(v);
  if (Array.isArray(v)) return `[${v.map(shown).join(', ')}]`;
  if (v && typeof v === 'object') {
    const s = v as { type?: unknown; elementType?: unknown; length?: unknown };
    if (s.type === 'array') return `[${String(s.length)} × ${String(s.elementType)}]`;
    if (s.type === 'string') return `<string, ${String(s.length)} bytes>`;
    return oneLine(JSON.stringify(v));
  }
  return String(v);
}

/** Control characters (line breaks in a chat template, escapes from a file) made visible. */
function oneLine(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => (c === '\n' ? '\\n' : c === '\t' ? '\\t' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

function cut(s: string): string {
  return s.length <= VALUE_WIDTH ? s : `${s.slice(0, VALUE_WIDTH - 1)}…`;
}
