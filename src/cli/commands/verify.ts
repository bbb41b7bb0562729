/** `mpk verify [REF...]` */
import { verifyStore } from '../../store/verify.js';
import type { CommandSpec } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { humanBytes, plural } from '../format.js';
import { withStore } from '../store.js';

export const verify: CommandSpec = {
  name: 'verify',
  usage: 'mpk verify [REF...] [--json]',
  summary: 'Rehash the blobs of the given models (default: every model) and report, by digest, any that are\ncorrupt or missing. Exits 4 when a problem is found.',
  help: ['--json  print the result as JSON'],
  options: { json: { type: 'boolean' }, quiet: { type: 'boolean', short: 'q' } },
  args: [0, Infinity],
  async run(ctx, v, refs) {
    const r = await withStore(ctx, (s) => verifyStore(s, refs));
    if (v.json) ctx.stdout.write(JSON.stringify(r, null, 2) + '\n');
    else {
      for (const p of r.problems) ctx.stdout.write(`${p.problem.toUpperCase()} ${p.digest}: ${p.detail}\n`);
      if (!ctx.quiet) ctx.stdout.write(`Checked ${plural(r.checked, 'blob')}, ${humanBytes(r.checkedBytes)}: ${r.problems.length === 0 ? 'all good' : plural(r.problems.length, 'problem')}\n`);
    }
    return r.problems.length === 0 ? EXIT.OK : EXIT.INTEGRITY;
  },
};
