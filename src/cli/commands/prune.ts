/** `mpk prune` */
import { prune as pruneStore } from '../../store/prune.js';
import type { CommandSpec } from '../context.js';
import { humanBytes, plural } from '../format.js';
import { withStore } from '../store.js';

export const prune: CommandSpec = {
  name: 'prune',
  usage: 'mpk prune [--dry-run] [--json]',
  summary: 'Delete blobs that no model references. Blobs a running build is writing are kept.',
  help: ['--dry-run  list what would be deleted', '--json     print the result as JSON'],
  options: { 'dry-run': { type: 'boolean' }, json: { type: 'boolean' }, quiet: { type: 'boolean', short: 'q' } },
  args: [0, 0],
  async run(ctx, v) {
    const r = await withStore(ctx, (s) => pruneStore(s, { dryRun: !!v['dry-run'] }));
    if (v.json) ctx.stdout.write(JSON.stringify(r, null, 2) + '\n');
    else if (!ctx.quiet) {
      const verb = v['dry-run'] ? 'Would delete' : 'Deleted';
      const what = [plural(r.removed.length, 'blob')];
      if (r.removedPartials) what.push(plural(r.removedPartials, 'partial download'));
      if (r.removedTempFiles > r.removedPartials) what.push(plural(r.removedTempFiles - r.removedPartials, 'temp file'));
      ctx.stdout.write(`${verb} ${what.join(', ')}: ${humanBytes(r.reclaimedBytes)}${r.keptInUse ? ` (kept ${r.keptInUse} in use by running builds)` : ''}\n`);
    }
    return 0;
  },
};
