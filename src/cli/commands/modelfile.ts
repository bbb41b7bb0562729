/** `mpk modelfile generate DIR|FILE` */
import { link, rename, unlink, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fsError, PackError } from '../../errors.js';
import { generateModelfile } from '../../modelfile/generate.js';
import { formatModelfile } from '../../modelfile/parse.js';
import { strings, type CommandSpec } from '../context.js';

export const modelfileGenerate: CommandSpec = {
  name: 'modelfile',
  usage: 'mpk modelfile generate DIR|FILE [-o FILE] [--include GLOB]... [--exclude GLOB]... [--name NAME] ... [--json]',
  summary:
    'Write a Modelfile listing the files of DIR by kind (config, model, code, doc). ARCH, FAMILY, FORMAT,\n' +
    'PARAMSIZE, PRECISION and QUANTIZATION come from config.json where it says, else from the weights\'\n' +
    'headers (GGUF, safetensors, ONNX). A .mpkignore file in DIR excludes files like .gitignore. One model\n' +
    'FILE gives a Modelfile of that file alone (relative to its directory).',
  help: [
    '-o, --output FILE   write to FILE (default: standard output)',
    '--overwrite         replace FILE if it exists',
    '--include GLOB      include files the default rules skip (repeatable; ** allowed)',
    '--exclude GLOB      leave files out (repeatable; wins over --include)',
    '--name, --arch, --family, --format, --param-size, --precision, --quantization VALUE',
    '                    set these fields instead of inferring them (a value the weights contradict is',
    '                    kept, with a warning)',
    '--json              print {modelfile, output, warnings} as JSON (the Modelfile\'s text in it unless -o)',
  ],
  options: {
    output: { type: 'string', short: 'o' },
    overwrite: { type: 'boolean' },
    include: { type: 'string', multiple: true },
    exclude: { type: 'string', multiple: true },
    name: { type: 'string' },
    arch: { type: 'string' },
    family: { type: 'string' },
    format: { type: 'string' },
    'param-size': { type: 'string' },
    precision: { type: 'string' },
    quantization: { type: 'string' },
    json: { type: 'boolean' },
  },
  args: [2, 2],
  async run(ctx, v, [sub, dir]) {
    if (sub !== 'generate') throw new PackError('USAGE', `modelfile: unknown subcommand ${JSON.stringify(sub)}`, { hint: 'use: mpk modelfile generate DIR|FILE' });
    const opt = (k: string) => (v[k] === undefined ? {} : { [k === 'param-size' ? 'paramSize' : k]: v[k] as string });
    const { modelfile, warnings } = await generateModelfile(resolve(ctx.cwd, dir!), {
      include: strings(v.include),
      exclude: strings(v.exclude),
      ...opt('name'), ...opt('arch'), ...opt('family'), ...opt('format'), ...opt('param-size'), ...opt('precision'), ...opt('quantization'),
    });
    warnings.forEach((w) => ctx.warn(w));
    const text = formatModelfile(modelfile);
    let output: string | null = null;
    if (v.output === undefined || v.output === '-') {
      if (!v.json) ctx.stdout.write(text);
    } else {
      const path = (output = resolve(ctx.cwd, v.output as string));
      // Written whole to a temp file first: a full disk never leaves half a Modelfile. link() refuses
      // to replace an existing file; rename() (with --overwrite) replaces it atomically.
      const tmp = `${path}.mpk-${process.pid}-${Date.now().toString(36)}.tmp`;
      try {
        await writeFile(tmp, text, { flag: 'wx' });
        await (v.overwrite ? rename(tmp, path) : link(tmp, path));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
          throw new PackError('ALREADY_EXISTS', `${path}: already exists`, { hint: 'add --overwrite to replace it' });
        }
        throw fsError(e, path, 'cannot write');
      } finally {
        await unlink(tmp).catch(() => undefined);
      }
      if (!ctx.quiet && !v.json) ctx.stderr.write(`Wrote ${path}\n`);
    }
    if (v.json) ctx.stdout.write(`${JSON.stringify({ modelfile: text, output, warnings }, null, 2)}\n`);
    return 0;
  },
};
