/** `mpk build [-f Modelfile] -t REF DIR|FILE` */
import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { buildModel } from '../../build/build-model.js';
import { fsError, PackError } from '../../errors.js';
import { creationTime } from '../../modelpack/config.js';
import { parseModelfile } from '../../modelfile/parse.js';
import type { CommandSpec, Ctx } from '../context.js';
import { humanBytes, plural } from '../format.js';
import { ProgressBar } from '../progress.js';
import { withStore } from '../store.js';

export const build: CommandSpec = {
  name: 'build',
  usage: 'mpk build [-f Modelfile] -t NAME[:TAG] DIR|FILE',
  summary:
    'Package the files of DIR (or one model FILE) as a ModelPack artifact: one raw layer per file, a config\n' +
    'and a manifest, stored and tagged in the local store. Without -f (and no DIR/Modelfile) the Modelfile is\n' +
    'generated: fields from config.json and the weights\' headers (GGUF, safetensors, ONNX). A Modelfile value\n' +
    'that contradicts the weights is kept, with a warning. FILE (e.g. model.gguf) is packaged alone; with -f,\n' +
    'the Modelfile\'s paths are relative to FILE\'s directory.',
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
    concurrency: { type: 'string', short: 'c' },
    json: { type: 'boolean' },
    quiet: { type: 'boolean', short: 'q' },
  },
  args: [1, 1],
  async run(ctx: Ctx, v, [dir]) {
    if (!v.tag) throw new PackError('USAGE', 'build: no model name given', { hint: 'add -t NAME:TAG' });
    const contextDir = resolve(ctx.cwd, dir!);
    const modelfile = await loadModelfile(ctx, v.file as string | undefined, contextDir);
    const concurrency = v.concurrency === undefined ? undefined : Number(v.concurrency);
    if (concurrency !== undefined && !(Number.isInteger(concurrency) && concurrency > 0)) {
      throw new PackError('USAGE', `--concurrency ${v.concurrency}: not a positive whole number`, { hint: 'e.g. -c 4' });
    }
    const bar = new ProgressBar(ctx.stderr, 'hashing', ctx.progress);
    const result = await withStore(ctx, (store) =>
      buildModel(store, {
        contextDir,
        reference: v.tag as string,
        ...(modelfile ? { modelfile } : {}),
        family: v['legacy-cnai'] ? 'cnai' : 'cncf',
        keepFileMetadata: !!v['keep-file-metadata'],
        createdAt: creationTime(v.created as string | undefined, ctx.env),
        noCache: !!v['no-cache'],
        groupSmallFiles: !!v['group-small-files'],
        ...(concurrency ? { concurrency } : {}),
        ...(ctx.signal ? { signal: ctx.signal } : {}),
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
