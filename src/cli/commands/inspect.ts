/** `mpk inspect REF` */
import { inspectModel } from '../../modelpack/inspect.js';
import type { ModelConfig } from '../../modelpack/config.js';
import type { CommandSpec } from '../context.js';
import { humanBytes, paramSizeText, plural, table } from '../format.js';
import { withStore } from '../store.js';

/** Values wider than this are cut on the text display (--json gives them whole). */
const VALUE_WIDTH = 72;

export const inspect: CommandSpec = {
  name: 'inspect',
  usage: 'mpk inspect REF [--json]',
  summary: "Show a model's manifest digest, config, what its weights' headers say (format, architecture,\nparameters, precision, quantization, context size, GGUF metadata keys) and its files.",
  help: ['--json  print manifest, config, files and every GGUF metadata value as JSON'],
  options: { json: { type: 'boolean' } },
  args: [1, 1],
  async run(ctx, v, [ref]) {
    const d = await withStore(ctx, (s) => inspectModel(s, ref!));
    if (v.json) {
      ctx.stdout.write(JSON.stringify(d, null, 2) + '\n');
      return 0;
    }
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
    return 0;
  },
};

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
