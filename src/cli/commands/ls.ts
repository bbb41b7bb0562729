/** `mpk ls` */
import { listModels } from '../../modelpack/inspect.js';
import type { CommandSpec } from '../context.js';
import { humanBytes, paramSizeText, shortDigest, table } from '../format.js';
import { withStore } from '../store.js';

export const ls: CommandSpec = {
  name: 'ls',
  usage: 'mpk ls [--json] [-q] [--digests]',
  summary: 'List the models in the local store.',
  help: ['--json       print a JSON array', '-q, --quiet  print references only', '--digests    show full digests'],
  options: { json: { type: 'boolean' }, quiet: { type: 'boolean', short: 'q' }, digests: { type: 'boolean' } },
  args: [0, 0],
  async run(ctx, v) {
    const models = await withStore(ctx, listModels);
    if (v.json) {
      ctx.stdout.write(JSON.stringify(models, null, 2) + '\n');
    } else if (ctx.quiet) {
      for (const m of models) ctx.stdout.write(`${m.reference}\n`);
    } else {
      const rows = models.map((m) => [
        m.reference,
        v.digests ? m.digest : shortDigest(m.digest),
        humanBytes(m.size),
        m.format ?? (m.kind === 'modelpack' ? '-' : m.kind),
        m.paramSize ? paramSizeText(m.paramSize) : '-', // configs written by others say 5M, 5.00M, 1.23 M: one form here
        m.quantization ?? '-',
      ]);
      ctx.stdout.write(table(['REFERENCE', 'DIGEST', 'SIZE', 'FORMAT', 'PARAMS', 'QUANTIZATION'], rows));
    }
    return 0;
  },
};
