/** `mpk index create|add REF VARIANT...`, `mpk index rm REF VARIANT...`: variant indexes in the store. */
import { PackError } from '../../errors.js';
import type { Index } from '../../oci/manifest.js';
import type { Descriptor } from '../../oci/descriptor.js';
import { ANNOTATION_QUANTIZATION } from '../../oci/media-types.js';
import { addToIndex, createIndex, parseVariantArg, removeFromIndex } from '../../modelpack/variant-index.js';
import type { CommandSpec } from '../context.js';
import { plural } from '../format.js';
import { withStore } from '../store.js';

export const indexCommand: CommandSpec = {
  name: 'index',
  usage: 'mpk index create REF VARIANT... | mpk index add REF VARIANT... | mpk index rm REF VARIANT... [--json]',
  summary:
    'Make an index of a model\'s variants (quantizations, formats, platforms): one OCI image index that\n' +
    'pull and run choose from (--variant, --platform, or the best one that fits in memory). VARIANT is a\n' +
    'stored model (or index: they nest, 8 levels in all), REF or REF,platform=OS/ARCH[/VARIANT]; its entry\n' +
    'carries its quantization, format,\n' +
    'parameter size and weight bytes. Entries keep the order given (add appends), so the same variants\n' +
    'in the same order give the same digest. add and rm write a new index and move the tag.\n' +
    'rm takes a digest (12+ hex digits), a stored reference or an annotation value (Q8_0, KEY=VALUE).',
  help: ['--json   print the index reference, digest and entries as JSON'],
  options: { json: { type: 'boolean' } },
  args: [3, Infinity],
  async run(ctx, v, [sub, ref, ...rest]) {
    const r = await withStore(ctx, async (store) => {
      if (sub === 'create') return { verb: 'Created', ...(await createIndex(store, ref!, rest.map(parseVariantArg))) };
      if (sub === 'add') return { verb: 'Updated', ...(await addToIndex(store, ref!, rest.map(parseVariantArg))) };
      if (sub === 'rm') return { verb: 'Updated', ...(await removeFromIndex(store, ref!, rest)) };
      throw new PackError('USAGE', `index: unknown subcommand ${JSON.stringify(sub)}`, { hint: 'mpk index create, add or rm' });
    });
    if (v.json) {
      ctx.stdout.write(`${JSON.stringify({ reference: ref, digest: r.descriptor.digest, size: r.descriptor.size, artifactType: r.index.artifactType, manifests: r.index.manifests })}\n`);
    } else if (!ctx.quiet) {
      ctx.stdout.write(`${r.verb} index ${ref}: ${plural(r.index.manifests.length, 'variant')} (${names(r.index)})\nDigest: ${r.descriptor.digest}\n`);
    }
    return 0;
  },
};

function names(index: Index): string {
  return index.manifests.map((e: Descriptor) => e.annotations?.[ANNOTATION_QUANTIZATION] ?? e.digest.slice(0, 19)).join(', ');
}
