/** `mpk rm REF...` */
import type { CommandSpec } from '../context.js';
import { withStore } from '../store.js';

export const rm: CommandSpec = {
  name: 'rm',
  usage: 'mpk rm REF [REF...]',
  summary: 'Remove model references. Their blobs stay until `mpk prune`.',
  help: ['-q, --quiet  print nothing'],
  options: { quiet: { type: 'boolean', short: 'q' } },
  args: [1, Infinity],
  async run(ctx, _v, refs) {
    await withStore(ctx, async (s) => {
      for (const r of refs) {
        await s.untag(r);
        if (!ctx.quiet) ctx.stdout.write(`Untagged: ${r}\n`);
      }
    });
    return 0;
  },
};
