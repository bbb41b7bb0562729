/**
 * `mpk modelfile generate DIR|FILE`: walks DIR, classifies each file as modctl does (a file no
 * table names is sniffed: GGUF, safetensors or ONNX content makes it MODEL), describes the weights
 * from their headers, reads config.json / generation_config.json, and lists one explicit path per
 * line (sorted, never a glob), so the result is reviewable and deterministic. The fields follow
 * infer-fields.ts: options > config.json > the weights. FILE alone gives a Modelfile of that one
 * file (its path relative to its directory; no config.json is read).
 * Priority: --exclude > --include > default skips; `.mpkignore` adds excludes (gitignore-like).
 */
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { pathMatcher } from '../internal/glob.js';
import { mapBounded } from '../internal/map-bounded.js';
import { PackError, fsError } from '../errors.js';
import { detectModelFormat } from '../formats/detect.js';
import { describeWeights, type WeightFile, type WeightsDescription } from '../formats/inspect-weights.js';
import { classifyFile, isSkippedByDefault, WEIGHT_SIZE_THRESHOLD, type Classification } from './classify.js';
import { contradictions, inferFields, readHfConfig, type HfMeta } from './infer-fields.js';
import { emptyModelfile, type ListKey, type Modelfile, type ModelFields } from './types.js';
import { walkFiles, type WalkEntry } from './walk.js';

export interface GenerateOptions extends ModelFields {
  /** Globs (relative paths, `**` allowed) that bring back files the default rules skip. */
  include?: string[];
  /** Globs that leave files out; they win over include. A matching directory is not entered. */
  exclude?: string[];
  /** How the weight files are described (the build passes one with a cache); default describeWeights. */
  describeWeights?: (files: WeightFile[]) => Promise<WeightsDescription>;
}

export interface GenerateResult {
  modelfile: Modelfile;
  warnings: string[];
  /** What the weights' headers say (undefined without weight files). */
  weights?: WeightsDescription;
}

/** Unknown files are sniffed for model content, the largest first, up to this many. */
const MAX_SNIFFED = 64;

const KIND_KEY = { config: 'config', weight: 'model', code: 'code', doc: 'doc', dataset: 'dataset' } as const satisfies Record<string, ListKey>;

export async function generateModelfile(path: string, opts: GenerateOptions = {}): Promise<GenerateResult> {
  const st = await stat(path).catch((e) => {
    throw fsError(e, path, 'cannot read model directory');
  });
  if (!st.isDirectory() && !st.isFile()) {
    throw new PackError('USAGE', `${path}: not a directory or a file`, { hint: 'give the directory that holds the model files, or one model file' });
  }
  const single = st.isFile();
  const dir = single ? dirname(path) : path;
  const warnings: string[] = [];
  const entries: WalkEntry[] = single ? [{ path: basename(path), absPath: path }] : await listFiles(dir, opts);

  const mf = emptyModelfile('<generated>');
  const files: Array<{ path: string; absPath: string; size: number; c: Classification }> = [];
  for (const e of entries) {
    if (e.problem === 'escapes') {
      warnings.push(`skipped ${e.path}: symbolic link to ${e.target}, outside ${dir}`);
      continue;
    }
    if (e.problem === 'dangling') {
      warnings.push(`skipped ${e.path}: symbolic link to a missing file`);
      continue;
    }
    if (/[\r\n]/.test(e.path)) {
      warnings.push(`skipped ${JSON.stringify(e.path)}: a line break in a file name cannot be written in a Modelfile`);
      continue;
    }
    const size = (await stat(e.absPath)).size;
    files.push({ path: e.path, absPath: e.absPath, size, c: classifyFile(basename(e.path), size) });
  }
  // A file no table names (or, alone, one that is not a weight by name) is MODEL if its content is a model format.
  const sniff = files.filter((f) => !f.c.known || (single && f.c.kind !== 'weight')).sort((a, b) => b.size - a.size).slice(0, MAX_SNIFFED);
  await mapBounded(sniff, async (f) => {
    if ((await detectModelFormat(f.absPath).catch(() => undefined)) !== undefined) f.c = { kind: 'weight', known: true };
  }, 8);
  const unknown: string[] = [];
  for (const f of files) {
    if (!f.c.known) unknown.push(f.path);
    mf[KIND_KEY[f.c.kind]].push({ pattern: f.path, line: 0, column: 0 });
  }
  if (unknown.length) {
    const shown = unknown.slice(0, 3).join(', ') + (unknown.length > 3 ? `, and ${unknown.length - 3} more` : '');
    warnings.push(`${unknown.length} file(s) of unknown type packaged by size (MODEL if over ${WEIGHT_SIZE_THRESHOLD / 1e6} MB, else CODE): ${shown}`);
  }
  if (mf.model.length + mf.code.length + mf.dataset.length === 0) {
    throw new PackError('EMPTY_BUILD', `${path}: no model, code or dataset files found`, {
      hint: single ? 'give a model file, or the directory that holds the model' : 'check the directory, bring back skipped files with --include GLOB, or write the Modelfile by hand',
    });
  }

  const weightFiles: WeightFile[] = files.filter((f) => f.c.kind === 'weight').map(({ path: p, absPath, size }) => ({ path: p, absPath, size }));
  const weights = weightFiles.length > 0 ? await (opts.describeWeights ?? describeWeights)(weightFiles) : undefined;
  if (weights) warnings.push(...weights.warnings);
  const hf: HfMeta = single ? {} : await readHfConfig(dir, warnings);
  const given: ModelFields = { arch: opts.arch, family: opts.family, format: opts.format, paramSize: opts.paramSize, precision: opts.precision, quantization: opts.quantization };
  if (weights) warnings.push(...contradictions(given, weights, (kw, v) => `--${kw === 'PARAMSIZE' ? 'param-size' : kw.toLowerCase()} ${v}`));
  const name = opts.name ?? defaultName(single ? basename(path, extname(path)) : dir);
  if (name !== undefined && name !== '') mf.name = name;
  Object.assign(mf, inferFields(given, hf, weights));
  return weights ? { modelfile: mf, warnings, weights } : { modelfile: mf, warnings };
}

/** The files of DIR that generate lists: default skips, --include/--exclude, .mpkignore. */
async function listFiles(dir: string, opts: GenerateOptions): Promise<WalkEntry[]> {
  const ignore = await readIgnoreFile(join(dir, '.mpkignore'));
  const cliExclude = pathMatcher(opts.exclude, false);
  const cliInclude = pathMatcher(opts.include, false);
  const excluded = (rel: string) => cliExclude(rel) || ignore(rel) === 'exclude';
  const included = (rel: string) => cliInclude(rel) || ignore(rel) === 'include';
  const rescues = (opts.include?.length ?? 0) > 0 || ignore.hasNegations;
  // A skipped directory (.git, __pycache__) is still entered when include patterns exist: they
  // may bring back files below it; only those files are kept.
  const skippedDirs: string[] = [];
  const underSkipped = (rel: string) => skippedDirs.some((d) => rel.startsWith(`${d}/`));
  return walkFiles(dir, {
    pruneDir: (rel, name) => {
      if (excluded(rel)) return true;
      if ((isSkippedByDefault(name) || underSkipped(rel)) && !included(rel)) {
        if (!rescues) return true;
        skippedDirs.push(rel);
      }
      return false;
    },
    skipFile: (rel, name) => {
      if (excluded(rel)) return true;
      if (included(rel)) return false;
      return isSkippedByDefault(name) || underSkipped(rel);
    },
  });
}

/** The directory's (or file's) base name, made into a valid repository component. */
function defaultName(dir: string): string | undefined {
  const n = basename(dir).toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '');
  return n || undefined;
}

type IgnoreDecision = 'exclude' | 'include' | undefined;

/**
 * `.mpkignore`: one glob per line, `#` comments, `!` to bring a path back; the last matching line
 * decides, as in .gitignore. A pattern without `/` matches at any depth, a leading `/` anchors it
 * to DIR, a trailing `/` names a directory (and so everything below it).
 */
async function readIgnoreFile(path: string): Promise<((rel: string) => IgnoreDecision) & { hasNegations: boolean }> {
  let text = '';
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(e, path, 'cannot read');
  }
  const rules: Array<{ negate: boolean; match: (rel: string) => boolean }> = [];
  for (const raw of text.split(/\r?\n/)) {
    let line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const negate = line.startsWith('!');
    if (negate) line = line.slice(1);
    line = line.replace(/\/+$/, '');
    const anchored = line.includes('/');
    line = line.replace(/^\/+/, '');
    if (line === '') continue;
    rules.push({ negate, match: pathMatcher([anchored ? line : `**/${line}`], false) });
  }
  const decide = (rel: string): IgnoreDecision => {
    let d: IgnoreDecision;
    for (const r of rules) if (r.match(rel)) d = r.negate ? 'include' : 'exclude';
    return d;
  };
  return Object.assign(decide, { hasNegations: rules.some((r) => r.negate) });
}
