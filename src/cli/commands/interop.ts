/** `mpk import ollama NAME`, `mpk export ollama REF NAME`, `mpk convert REF --format F -t NEWREF` */
import { PackError } from '../../errors.js';
import { convertToDocker } from '../../interop/convert-docker.js';
import { convertToModelPack } from '../../interop/convert-modelpack.js';
import { exportOllama } from '../../interop/export-ollama.js';
import { importOllama } from '../../interop/import-ollama.js';
import { ollamaModelsDir } from '../../interop/ollama-dir.js';
import { creationTime } from '../../modelpack/config.js';
import type { CommandSpec, Ctx } from '../context.js';
import { humanBytes, plural } from '../format.js';
import { withStore } from '../store.js';

const MODELS_HELP = '--models DIR    the Ollama models directory (default $OLLAMA_MODELS, else ~/.ollama/models)';

function onlyOllama(cmd: string, what: string | undefined): void {
  if (what !== 'ollama') {
    throw new PackError('USAGE', `${cmd}: unknown source ${JSON.stringify(what)}`, { hint: `only ollama is supported: mpk ${cmd} ollama ...` });
  }
}

function modelsDir(ctx: Ctx, v: Record<string, unknown>): string {
  return ollamaModelsDir(ctx.env, v.models as string | undefined, ctx.cwd);
}

export const importCommand: CommandSpec = {
  name: 'import',
  usage: 'mpk import ollama NAME[:TAG] [--models DIR] [-t REF]',
  summary:
    "Bring a model from Ollama's models directory into the store. Blobs are hard-linked (no second copy\n" +
    'on the same file system; copied, and said so, otherwise) and every one is rehashed before it is stored.\n' +
    'The model is named ollama/NAME:TAG (ollama/NAMESPACE/NAME:TAG outside the library) unless -t is given.',
  help: [MODELS_HELP, '-t, --tag REF   name in the store', '--json          print the result as JSON', '-q, --quiet     print only the reference'],
  options: { models: { type: 'string' }, tag: { type: 'string', short: 't' }, json: { type: 'boolean' }, quiet: { type: 'boolean', short: 'q' } },
  args: [2, 2],
  async run(ctx, v, [what, name]) {
    onlyOllama('import', what);
    const r = await withStore(ctx, (s) =>
      importOllama(s, name!, { modelsDir: modelsDir(ctx, v), ...(v.tag ? { reference: v.tag as string } : {}), ...(ctx.signal ? { signal: ctx.signal } : {}) }),
    );
    r.warnings.forEach((w) => ctx.warn(w));
    if (v.json) ctx.stdout.write(JSON.stringify(r, null, 2) + '\n');
    else if (ctx.quiet) ctx.stdout.write(`${r.reference}\n`);
    else {
      const linked = r.blobs.filter((b) => b.how === 'linked').length;
      const copied = r.blobs.filter((b) => b.how === 'copied').length;
      const present = r.blobs.filter((b) => b.how === 'present').length;
      ctx.stdout.write(`Imported ${r.name} as ${r.reference}: ${plural(r.blobs.length, 'blob')}, ${humanBytes(r.bytes)} (${linked} linked, ${copied} copied, ${present} already stored)\n`);
      ctx.stdout.write(`Digest: ${r.digest}\n`);
    }
    return 0;
  },
};

export const exportCommand: CommandSpec = {
  name: 'export',
  usage: 'mpk export ollama REF NAME[:TAG] [--models DIR] [--force]',
  summary:
    "Write a model from the store into Ollama's models directory, so that `ollama run NAME` finds it.\n" +
    'An Ollama model goes back byte for byte; a ModelPack or Docker Model Runner model with one GGUF weight\n' +
    'gets an Ollama manifest and config around the same blob. Blobs are hard links to the store where possible.',
  help: [MODELS_HELP, '--force         replace an existing, different model of that name', '--json          print the result as JSON'],
  options: { models: { type: 'string' }, force: { type: 'boolean' }, json: { type: 'boolean' }, quiet: { type: 'boolean', short: 'q' } },
  args: [3, 3],
  async run(ctx, v, [what, ref, name]) {
    onlyOllama('export', what);
    const r = await withStore(ctx, (s) => exportOllama(s, ref!, name!, { modelsDir: modelsDir(ctx, v), force: !!v.force, ...(ctx.signal ? { signal: ctx.signal } : {}) }));
    r.warnings.forEach((w) => ctx.warn(w));
    if (v.json) ctx.stdout.write(JSON.stringify(r, null, 2) + '\n');
    else if (!ctx.quiet) {
      const linked = r.blobs.filter((b) => b.how === 'linked').length;
      ctx.stdout.write(`Exported ${ref} as ${r.name}${r.converted ? ' (converted)' : ''}: ${plural(r.blobs.length, 'blob')} (${linked} linked) to ${r.manifestPath}\n`);
    }
    return 0;
  },
};

export const convertCommand: CommandSpec = {
  name: 'convert',
  usage: 'mpk convert REF --format docker|modelpack -t NEWREF',
  summary:
    'Make a new artifact of the same blobs in another format (no byte is copied):\n' +
    '  docker     a Docker Model Runner artifact (vnd.docker.ai; `mpk push` it for `docker model pull`)\n' +
    '  modelpack  a CNCF ModelPack artifact, from a Docker Model Runner or Ollama model',
  help: [
    '--format F      docker or modelpack (required)',
    '-t, --tag REF   name of the new artifact (required)',
    "--created TIME  creation time to record (default: the source's, else $SOURCE_DATE_EPOCH, else none)",
    '--json          print the result as JSON',
  ],
  options: { format: { type: 'string' }, tag: { type: 'string', short: 't' }, created: { type: 'string' }, json: { type: 'boolean' }, quiet: { type: 'boolean', short: 'q' } },
  args: [1, 1],
  async run(ctx, v, [ref]) {
    if (v.format !== 'docker' && v.format !== 'modelpack') {
      throw new PackError('USAGE', `convert: --format ${v.format === undefined ? 'is required' : JSON.stringify(v.format)}`, { hint: 'use --format docker or --format modelpack' });
    }
    if (!v.tag) throw new PackError('USAGE', 'convert: no name given for the new artifact', { hint: 'add -t NAME:TAG' });
    const createdAt = v.created === undefined ? undefined : creationTime(v.created as string, ctx.env);
    const opts = { env: ctx.env, ...(createdAt ? { createdAt } : {}) };
    const convert = v.format === 'docker' ? convertToDocker : convertToModelPack;
    const r = await withStore(ctx, (s) => convert(s, ref!, v.tag as string, opts));
    r.warnings.forEach((w) => ctx.warn(w));
    if (v.json) ctx.stdout.write(JSON.stringify(r, null, 2) + '\n');
    else if (ctx.quiet) ctx.stdout.write(`${r.manifest.digest}\n`);
    else ctx.stdout.write(`Converted ${ref} to ${r.reference} (${v.format}, ${plural(r.layers, 'layer')}, config ${r.config.mediaType})\nDigest: ${r.manifest.digest}\n`);
    return 0;
  },
};
