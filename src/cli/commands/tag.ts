/** `mpk tag SRC DST` */
import type { CommandSpec } from '../context.js';
import { withStore } from '../store.js';

export const tag: CommandSpec = {
  name: 'tag',
  usage: 'mpk tag SOURCE TARGET [--json]',
  summary: 'Give the model SOURCE (a reference or digest) the name TARGET. Prints nothing, as docker tag.',
  help: ['--json   print the new name and its digest as JSON'],
  options: { json: { type: 'boolean' } },
  args: [2, 2],
  async run(ctx, v, [src, dst]) {
    const desc = await withStore(ctx, async (s) => {
      const d = await s.resolve(src!);
      await s.tag(d, dst!);
      return d;
    });
    if (v.json) ctx.stdout.write(`${JSON.stringify({ source: src, target: dst, digest: desc.digest })}\n`);
    return 0;
  },
};
