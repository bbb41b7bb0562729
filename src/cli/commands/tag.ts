/** `mpk tag SRC DST` */
import type { CommandSpec } from '../context.js';
import { withStore } from '../store.js';

export const tag: CommandSpec = {
  name: 'tag',
  usage: 'mpk tag SOURCE TARGET',
  summary: 'Give the model SOURCE (a reference or digest) the name TARGET.',
  help: [],
  options: {},
  args: [2, 2],
  async run(ctx, _v, [src, dst]) {
    await withStore(ctx, async (s) => s.tag(await s.resolve(src!), dst!));
    return 0;
  },
};
