/**
 * `mpk modelfile generate DIR`: walks DIR, classifies each file as modctl does, reads
 * config.json / generation_config.json for FAMILY, ARCH and PRECISION, and lists one explicit
 * path per line (sorted, never a glob), so the result is reviewable and deterministic.
 * Priority: --exclude > --include > default skips; `.mpkignore` adds excludes (gitignore-like).
 */
import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { pathMatcher } from '../internal/glob.js';
import { PackError, fsError } from '../errors.js';
import { classifyFile, inferFormat, isSkippedByDefault, WEIGHT_SIZE_THRESHOLD } from './classify.js';
import { emptyModelfile, type ListKey, type Modelfile, type ModelFields } from './types.js';
import { walkFiles } from './walk.js';

export interface GenerateOptions extends ModelFields {
  /** Globs (relative paths, `**` allowed) that bring back files the default rules skip. */
  include?: string[];
  /** Globs that leave files out; they win over include. A matching directory is not entered. */
  exclude?: string[];
}

export interface GenerateResult {
  modelfile: Modelfile;
  warnings: string[];
}

const KIND_KEY = { config: 'config', weight: 'model', code: 'code', doc: 'doc', dataset: 'dataset' } as const satisfies Record<string, ListKey>;

export async function generateModelfile(dir: string, opts: GenerateOptions = {}): Promise<GenerateResult> {
  const st = await stat(dir).catch((e) => {
    throw fsError(e, dir, 'cannot read model directory');
  });
  if (!st.isDirectory()) {
    throw new PackError('USAGE', `${dir}: not a directory`, { hint: 'give the directory that holds the model files' });
  }
  const warnings: string[] = [];
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
  const entries = await walkFiles(dir, {
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

  const mf = emptyModelfile('<generated>');
  const unknown: string[] = [];
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
    const c = classifyFile(basename(e.path), size);
    if (!c.known) unknown.push(e.path);
    mf[KIND_KEY[c.kind]].push({ pattern: e.path, line: 0, column: 0 });
  }
  if (unknown.length) {
    const shown = unknown.slice(0, 3).join(', ') + (unknown.length > 3 ? `, and ${unknown.length - 3} more` : '');
    warnings.push(`${unknown.length} file(s) of unknown type packaged by size (MODEL if over ${WEIGHT_SIZE_THRESHOLD / 1e6} MB, else CODE): ${shown}`);
  }
  if (mf.model.length + mf.code.length + mf.dataset.length === 0) {
    throw new PackError('EMPTY_BUILD', `${dir}: no model, code or dataset files found`, {
      hint: 'check the directory, bring back skipped files with --include GLOB, or write the Modelfile by hand',
    });
  }

  const hf = await readHfConfig(dir, warnings);
  const set = (key: keyof ModelFields, v: string | undefined) => {
    if (v !== undefined && v !== '') mf[key] = v;
  };
  set('name', opts.name ?? defaultName(dir));
  set('arch', opts.arch ?? hf.arch);
  set('family', opts.family ?? hf.family);
  set('format', opts.format ?? inferFormat(mf.model.map((e) => basename(e.pattern))));
  set('paramSize', opts.paramSize);
  set('precision', opts.precision ?? hf.precision);
  set('quantization', opts.quantization ?? hf.quantization);
  return { modelfile: mf, warnings };
}

/** The directory's base name, made into a valid repository component. */
function defaultName(dir: string): string | undefined {
  const n = basename(dir).toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '');
  return n || undefined;
}

interface HfMeta {
  arch?: string;
  family?: string;
  precision?: string;
  quantization?: string;
}

/** config.json then generation_config.json (later wins), as modctl reads them. */
async function readHfConfig(dir: string, warnings: string[]): Promise<HfMeta> {
  const merged: Record<string, unknown> = {};
  for (const name of ['config.json', 'generation_config.json']) {
    let text: string;
    try {
      text = await readFile(join(dir, name), 'utf8');
    } catch {
      continue;
    }
    try {
      const v = JSON.parse(text) as unknown;
      if (v && typeof v === 'object' && !Array.isArray(v)) Object.assign(merged, v);
    } catch (e) {
      warnings.push(`${name}: not valid JSON (${(e as Error).message}); family, architecture and precision not inferred from it`);
    }
  }
  const str = (v: unknown) => (typeof v === 'string' && v.length > 0 && v.length <= 256 ? v : undefined);
  const q = merged.quantization_config as Record<string, unknown> | undefined;
  return {
    family: str(merged.model_type),
    arch: merged.transformers_version !== undefined ? 'transformer' : undefined,
    precision: str(merged.torch_dtype) ?? str(merged.dtype),
    quantization: q && typeof q === 'object' ? str(q.quant_method) : undefined,
  };
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
