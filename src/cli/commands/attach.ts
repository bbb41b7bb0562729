/** `mpk attach REF --type TYPE FILE...` and `mpk referrers REF [--type TYPE]`: artifacts that refer to a model. */
import { resolve } from 'node:path';
import { PackError } from '../../errors.js';
import { attach, referrerTree, type ReferrerNode } from '../../transfer/referrers.js';
import type { CommandSpec, Ctx } from '../context.js';
import { humanBytes, plural } from '../format.js';
import { REGISTRY_OPTIONS, transferOptions } from '../registry-flags.js';
import { withStore } from '../store.js';
import { parseReference } from '../../oci/reference.js';

export const TRANSPORT_HELP = [
  '--plain-http       use http:// (default only for localhost and 127.0.0.1)',
  '--insecure         accept any TLS certificate (test registries only)',
  '--ca-file FILE     also trust the CA certificates in this PEM file',
];
export const TRANSPORT: CommandSpec['options'] = {
  'plain-http': REGISTRY_OPTIONS['plain-http']!,
  insecure: REGISTRY_OPTIONS.insecure!,
  'ca-file': REGISTRY_OPTIONS['ca-file']!,
  json: { type: 'boolean' },
};

/** The local store only for local references: a remote one needs none. */
export async function maybeStore<T>(ctx: Ctx, reference: string, fn: (store: Parameters<Parameters<typeof withStore>[1]>[0] | undefined) => Promise<T>): Promise<T> {
  return parseReference(reference).registry ? fn(undefined) : withStore(ctx, fn);
}

function typeFlag(cmd: string, v: Record<string, unknown>, required: boolean): string | undefined {
  const t = v.type;
  if (t === undefined && !required) return undefined;
  if (typeof t !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/.test(t)) {
    throw new PackError('USAGE', `${cmd}: --type ${t === undefined ? 'is required' : `${JSON.stringify(t)} is not a media type`}`, {
      hint: 'e.g. --type application/spdx+json',
    });
  }
  return t;
}

export const attachCommand: CommandSpec = {
  name: 'attach',
  usage: 'mpk attach REF --type ARTIFACT_TYPE FILE... [--json]',
  summary:
    'Attach files (an SBOM, eval results, a model card) to a model as an OCI artifact whose subject is\n' +
    "the model's manifest: one layer per file, titled by its name. A local REF keeps it in the store\n" +
    '(not shown by ls; prune keeps it while the model is kept); HOST/NAME:TAG pushes it to the registry\n' +
    '(by digest; registries without the referrers API get the sha256-<hex> tag). Prints its digest.',
  help: ['--type TYPE        the artifact type, e.g. application/spdx+json', '--json             print the referrer as JSON', ...TRANSPORT_HELP],
  options: { type: { type: 'string' }, ...TRANSPORT },
  args: [2, Infinity],
  async run(ctx, v, [ref, ...files]) {
    const type = typeFlag('attach', v, true)!;
    const paths = files.map((f) => resolve(ctx.cwd, f));
    const r = await maybeStore(ctx, ref!, (store) => attach(store, ref!, type, paths, transferOptions(ctx, v)));
    if (v.json) {
      ctx.stdout.write(`${JSON.stringify({ reference: r.reference, subject: r.subject.digest, digest: r.descriptor.digest, mediaType: r.descriptor.mediaType, size: r.descriptor.size, artifactType: type, files: r.manifest.layers })}\n`);
    } else {
      ctx.stdout.write(`${r.descriptor.digest}\n`);
    }
    return 0;
  },
};

export const referrersCommand: CommandSpec = {
  name: 'referrers',
  usage: 'mpk referrers REF [--type ARTIFACT_TYPE] [--json]',
  summary:
    'List the artifacts that refer to a model (attach, signatures), and theirs in turn, as a tree\n' +
    `(at most 8 levels; a cycle is shown once). A local REF lists the store's; HOST/NAME:TAG asks the\n` +
    'registry (the referrers API, else the sha256-<hex> tag).',
  help: ['--type TYPE        only artifacts of this type (at every level)', '--json             print the tree as JSON', ...TRANSPORT_HELP],
  options: { type: { type: 'string' }, ...TRANSPORT },
  args: [1, 1],
  async run(ctx, v, [ref]) {
    const type = typeFlag('referrers', v, false);
    const tree = await maybeStore(ctx, ref!, (store) => referrerTree(store, ref!, type, transferOptions(ctx, v)));
    if (v.json) {
      ctx.stdout.write(`${JSON.stringify(tree)}\n`);
      return 0;
    }
    const lines = [`${tree.reference.replace(/@sha256:[0-9a-f]+$/, '')}@${tree.digest}`];
    const draw = (nodes: ReferrerNode[], indent: string) => {
      nodes.forEach((n, i) => {
        const last = i === nodes.length - 1;
        const note = n.cycle ? ' (cycle: shown above)' : n.truncated ? ' (deeper referrers not listed)' : '';
        lines.push(`${indent}${last ? '└── ' : '├── '}${n.artifactType ?? n.mediaType} ${n.digest} (${humanBytes(n.size)}, ${plural(n.files.length, 'file')})${note}`);
        draw(n.referrers, indent + (last ? '    ' : '│   '));
      });
    };
    draw(tree.referrers, '');
    ctx.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  },
};
