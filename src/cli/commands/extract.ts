/** `mpk extract REF DIR` */
import { resolve } from 'node:path';
import { PackError } from '../../errors.js';
import { extractModel } from '../../extract/extract.js';
import { LAYER_KINDS, type LayerKind } from '../../oci/media-types.js';
import { strings, type CommandSpec } from '../context.js';
import { humanBytes, plural } from '../format.js';
import { ProgressBar } from '../progress.js';
import { withStore } from '../store.js';

const TYPE_NAMES: Record<string, LayerKind> = { weight: 'weight', model: 'weight', config: 'config', code: 'code', doc: 'doc', dataset: 'dataset' };

export const extract: CommandSpec = {
  name: 'extract',
  usage: 'mpk extract REF DIR [--type TYPE]... [--include GLOB]... [--link]',
  summary: "Restore a model's files under DIR with their modes, verifying every digest. Paths that would\nleave DIR are refused.",
  help: [
    '--type TYPE      only files of this kind: weight, config, code, doc, dataset (repeatable)',
    '--include GLOB   only files whose path matches (repeatable; ** allowed)',
    '--link           hard-link raw weight blobs from the store instead of copying (no second copy on',
    '                 disk; the linked files are read-only)',
    '--overwrite      replace existing files that differ',
    '--json           print the files written as JSON',
  ],
  options: {
    type: { type: 'string', multiple: true },
    include: { type: 'string', multiple: true },
    link: { type: 'boolean' },
    overwrite: { type: 'boolean' },
    json: { type: 'boolean' },
    quiet: { type: 'boolean', short: 'q' },
  },
  args: [2, 2],
  async run(ctx, v, [ref, dir]) {
    const types = strings(v.type).map((t) => {
      const k = TYPE_NAMES[t];
      if (!k) throw new PackError('USAGE', `--type ${JSON.stringify(t)}: unknown kind`, { hint: `use one of ${LAYER_KINDS.join(', ')}` });
      return k;
    });
    const bar = new ProgressBar(ctx.stderr, 'extracting', ctx.progress);
    const r = await withStore(ctx, (s) =>
      extractModel(s, ref!, resolve(ctx.cwd, dir!), {
        ...(types.length ? { types } : {}),
        ...(v.include ? { include: strings(v.include) } : {}),
        link: !!v.link,
        overwrite: !!v.overwrite,
        ...(ctx.signal ? { signal: ctx.signal } : {}),
        onProgress: (p) => bar.update(p.bytesDone, p.bytesTotal),
      }),
    ).finally(() => bar.done());
    r.warnings?.forEach((w) => ctx.warn(w));
    if (v.json) ctx.stdout.write(JSON.stringify(r, null, 2) + '\n');
    else if (!ctx.quiet) {
      const linked = r.files.filter((f) => f.linked).length;
      const same = r.files.filter((f) => f.unchanged).length;
      const notes = [linked ? `${linked} linked` : '', same ? `${same} already up to date` : ''].filter(Boolean).join(', ');
      ctx.stdout.write(`Extracted ${plural(r.files.length, 'file')}, ${humanBytes(r.bytes)} to ${dir}${notes ? ` (${notes})` : ''}\n`);
    }
    return 0;
  },
};
