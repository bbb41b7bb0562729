/** `mpk inspect REF` */
import { inspectModel } from '../../modelpack/inspect.js';
import type { ModelConfig } from '../../modelpack/config.js';
import type { CommandSpec } from '../context.js';
import { humanBytes, table } from '../format.js';
import { withStore } from '../store.js';

export const inspect: CommandSpec = {
  name: 'inspect',
  usage: 'mpk inspect REF [--json]',
  summary: "Show a model's manifest digest, config and files.",
  help: ['--json  print manifest, config and files as JSON'],
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
      ['Parameters', cfg?.config.paramSize ?? d.paramSize],
      ['Precision', cfg?.config.precision],
      ['Quantization', cfg?.config.quantization ?? d.quantization],
    ];
    for (const [k, val] of fields) if (val) ctx.stdout.write(`${`${k}:`.padEnd(15)}${val}\n`);
    if (d.files.length > 0) {
      ctx.stdout.write(`\nFiles (${d.files.length}):\n`);
      ctx.stdout.write(table(['TYPE', 'SIZE', 'DIGEST', 'PATH'], d.files.map((f) => [f.kind, humanBytes(f.size), f.digest.slice(0, 19), f.encoding === 'raw' || f.encoding === 'other' ? f.path : `${f.path}/ (${f.encoding})`])));
    }
    return 0;
  },
};
