/** `mpk build [-f Modelfile] -t REF DIR|FILE` */
import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { buildModel } from '../../build/build-model.js';
import { buildVariants } from '../../build/build-variants.js';
import { fsError, PackError } from '../../errors.js';
import { creationTime } from '../../modelpack/config.js';
import { parseModelfile } from '../../modelfile/parse.js';
import type { CommandSpec, Ctx } from '../context.js';
import { wholeNumber } from '../flag-values.js';
import { humanBytes, plural } from '../format.js';
import { ProgressBar } from '../progress.js';
import { withStore } from '../store.js';

export const build: CommandSpec = {
  name: 'build',
  usage: 'mpk build [-f Modelfile] -t NAME[:TAG] DIR|FILE | mpk build -t NAME:TAG --variants DIR | mpk build -t NAME:TAG FILE FILE...',
  summary:
    'Package the files of DIR (or one model FILE) as a ModelPack artifact: one raw layer per file, a config\n' +
    'and a manifest, stored and tagged in the local store. Without -f (and no DIR/Modelfile) the Modelfile is\n' +
    'generated: fields from config.json and the weights\' headers (GGUF, safetensors, ONNX). A Modelfile value\n' +
    'that contradicts the weights is kept, with a warning. FILE (e.g. model.gguf) is packaged alone; with -f,\n' +
    'the Modelfile\'s paths are relative to FILE\'s directory.\n' +
    'Several model FILEs, or --variants DIR (each GGUF file or split set in DIR, with the shared files),\n' +
    'build one model per weight, tagged TAG-<quantization>, and an index of them tagged NAME:TAG.',
  help: [
    '-t, --tag REF             name of the model (required), e.g. models/llama3:8b',
    '-f, --file PATH           Modelfile to use (default DIR/Modelfile if present; - for stdin)',
    '--legacy-cnai             write vnd.cnai media types (for Harbor versions keyed on them)',
    '--created TIME            record a creation time (RFC 3339, epoch seconds or "now"); default none,',
    '                          or $SOURCE_DATE_EPOCH',
    '--keep-file-metadata      record real mode, owner and mtime (the digest then depends on them)',
    '--no-cache                read every file (and weight header) even if unchanged since the last build',
    '--group-small-files       pack files under 1 MiB into one tar layer per directory (datasets of many',
    '                          small files: far fewer blobs to store and push; without it this happens only',
    '                          where one layer per file would pass the 4 MiB manifest limit)',
    '--variants                DIR: one model per GGUF weight (or split set) with the other files, and an',
    '                          index of them (as several FILEs do); see mpk index',
    '-c, --concurrency N       files hashed at once (default: number of CPUs)',
    '--json                    print the result as JSON',
    '-q, --quiet               print only the manifest digest',
  ],
  options: {
    tag: { type: 'string', short: 't' },
    file: { type: 'string', short: 'f' },
    'legacy-cnai': { type: 'boolean' },
    created: { type: 'string' },
    'keep-file-metadata': { type: 'boolean' },
    'no-cache': { type: 'boolean' },
    'group-small-files': { type: 'boolean' },
    variants: { type: 'boolean' },
    concurrency: { type: 'string', short: 'c' },
    json: { type: 'boolean' },
    quiet: { type: 'boolean', short: 'q' },
  },
  args: [1, Infinity],
  async run(ctx: Ctx, v, inputs) {
    if (!v.tag) throw new PackError('USAGE', 'build: no model name given', { hint: 'add -t NAME:TAG' });
    if (v.variants || inputs.length > 1) return runVariants(ctx, v, inputs);
    const contextDir = resolve(ctx.cwd, inputs[0]!);
    const modelfile = await loadModelfile(ctx, v.file as string | undefined, contextDir);
    const bar = new ProgressBar(ctx.stderr, 'hashing', ctx.progress);
    const result = await withStore(ctx, (store) =>
      buildModel(store, {
        contextDir,
        reference: v.tag as string,
        ...(modelfile ? { modelfile } : {}),
        ...commonOptions(ctx, v),
        onProgress: (p) => bar.update(p.bytesDone + p.bytesSkipped, p.bytesTotal, `${p.filesDone}/${p.filesTotal} files`),
        onWarning: (w) => ctx.warn(w),
      }),
    ).finally(() => bar.done());
    if (v.json) {
      ctx.stdout.write(
        JSON.stringify({ reference: result.reference, digest: result.manifest.digest, size: result.bytes, files: result.files, filesRead: result.filesRead, headersRead: result.headersRead, config: result.config.digest }, null, 2) + '\n',
      );
    } else if (ctx.quiet) {
      ctx.stdout.write(`${result.manifest.digest}\n`);
    } else {
      ctx.stdout.write(`Built ${result.reference}: ${plural(result.files, 'file')}, ${humanBytes(result.bytes)} (${result.filesRead} read, ${result.files - result.filesRead} unchanged)\n`);
      ctx.stdout.write(`Digest: ${result.manifest.digest}\n`);
    }
    return 0;
  },
};

/** The options a single build and a variants build share (flags checked here). */
function commonOptions(ctx: Ctx, v: Record<string, unknown>) {
  const concurrency = v.concurrency === undefined ? undefined : wholeNumber('concurrency', v.concurrency, 1, '4');
  return {
    family: v['legacy-cnai'] ? ('cnai' as const) : ('cncf' as const),
    keepFileMetadata: !!v['keep-file-metadata'],
    createdAt: creationTime(v.created as string | undefined, ctx.env),
    noCache: !!v['no-cache'],
    groupSmallFiles: !!v['group-small-files'],
    ...(concurrency ? { concurrency } : {}),
    ...(ctx.signal ? { signal: ctx.signal } : {}),
  };
}

/** Several weights at once: one model each and an index (build/build-variants.ts). */
async function runVariants(ctx: Ctx, v: Record<string, unknown>, inputs: string[]): Promise<number> {
  if (v.file !== undefined) throw new PackError('USAGE', 'build: -f does not go with --variants or several files', { hint: "each variant's Modelfile is generated from its own weights; build them one by one to use a Modelfile" });
  const r = await withStore(ctx, (store) =>
    buildVariants(store, {
      inputs: inputs.map((i) => resolve(ctx.cwd, i)),
      reference: v.tag as string,
      ...commonOptions(ctx, v),
      onWarning: (w) => ctx.warn(w),
    }),
  );
  if (v.json) {
    const variants = r.variants.map((b, i) => ({ reference: b.reference, digest: b.manifest.digest, size: b.bytes, annotations: r.document.manifests[i]!.annotations }));
    ctx.stdout.write(JSON.stringify({ reference: r.reference, digest: r.index.digest, mediaType: r.index.mediaType, variants }, null, 2) + '\n');
  } else if (ctx.quiet || v.quiet) {
    ctx.stdout.write(`${r.index.digest}\n`);
  } else {
    for (const b of r.variants) ctx.stdout.write(`Built ${b.reference}: ${plural(b.files, 'file')}, ${humanBytes(b.bytes)}\n`);
    ctx.stdout.write(`Built index ${r.reference}: ${plural(r.variants.length, 'variant')}\nDigest: ${r.index.digest}\n`);
  }
  return 0;
}

async function loadModelfile(ctx: Ctx, file: string | undefined, contextDir: string) {
  if (file === '-') {
    if (!ctx.readStdin) throw new PackError('USAGE', 'no standard input to read the Modelfile from');
    return parseModelfile(await ctx.readStdin(), '<stdin>');
  }
  if (file === undefined && (await stat(contextDir).catch(() => undefined))?.isFile()) return undefined; // one file: generate
  const path = file !== undefined ? resolve(ctx.cwd, file) : resolve(contextDir, 'Modelfile');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if (file === undefined && (e as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // generate one
    throw fsError(e, path, 'cannot read Modelfile');
  }
  return parseModelfile(text, file ?? 'Modelfile');
}
