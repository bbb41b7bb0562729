/** `mpk rm REF...` */
import type { CommandSpec } from '../context.js';
import { withStore } from '../store.js';

export const rm: CommandSpec = {
  name: 'rm',
  usage: 'mpk rm REF [REF...] [--json]',
  summary: 'Remove model references. Their blobs stay until `mpk prune`.',
  help: ['--json       print the references removed as JSON (also those removed before an error)', '-q, --quiet  print nothing'],
  options: { json: { type: 'boolean' }, quiet: { type: 'boolean', short: 'q' } },
  args: [1, Infinity],
  async run(ctx, v, refs) {
    const untagged: string[] = [];
    try {
      await withStore(ctx, async (s) => {
        for (const r of refs) {
          await s.untag(r);
          untagged.push(r);
          if (!ctx.quiet && !v.json) ctx.stdout.write(`Untagged: ${r}\n`);
        }
      });
    } finally {
      // With --json the result says what was done even when a later reference failed.
      if (v.json && untagged.length > 0) ctx.stdout.write(`${JSON.stringify({ untagged })}\n`);
    }
    return 0;
  },
};
