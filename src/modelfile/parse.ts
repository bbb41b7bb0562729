/**
 * The Modelfile grammar (modctl's): one `KEYWORD argument` per line, keywords case-insensitive,
 * `#` comment lines, double quotes group blanks, `\` escapes the next character. Unlike modctl,
 * errors carry 1-based line:column and say what to write instead; trailing `# comments` are
 * refused (modctl treats them as extra arguments too).
 */
import { ModelfileSyntaxError } from '../errors.js';
import { editDistance } from '../internal/edit-distance.js';
import {
  KEYWORDS,
  LIST_KEYWORDS,
  SINGLE_KEYWORDS,
  emptyModelfile,
  type ListKey,
  type Modelfile,
  type SingleKey,
} from './types.js';

const MAX_MODELFILE_BYTES = 1024 * 1024;

export function parseModelfile(text: string, file = 'Modelfile'): Modelfile {
  if (text.length > MAX_MODELFILE_BYTES) {
    throw new ModelfileSyntaxError(file, 1, 1, 'larger than 1 MiB', 'list directories or globs instead of every file');
  }
  const mf = emptyModelfile(file);
  const seen = new Map<SingleKey, number>();
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = i + 1;
    const lead = raw.length - raw.trimStart().length;
    const body = raw.trim();
    if (body === '' || body.startsWith('#')) return;
    const err = (col: number, msg: string, hint?: string) => new ModelfileSyntaxError(file, line, col, msg, hint);
    const glued = /^([A-Za-z_]+)[^\sA-Za-z_]/.exec(body);
    if (glued && KEYWORDS.includes(glued[1]!.toUpperCase())) {
      const kw = glued[1]!.toUpperCase();
      throw err(lead + kw.length + 1, `${kw} must be followed by a blank`, `write ${kw} ${body.slice(kw.length).replace(/^[=:]/, '')}`);
    }
    const m = /^([A-Za-z_]+)(\s+|$)/.exec(body);
    const word = m?.[1] ?? body.split(/\s/)[0]!;
    const upper = word.toUpperCase();
    if (!m || !KEYWORDS.includes(upper)) {
      const guess = closestKeyword(upper);
      throw err(lead + 1, `unknown instruction ${JSON.stringify(word)}`, guess ? `did you mean ${guess}? Instructions are ${KEYWORDS.join(', ')}` : `instructions are ${KEYWORDS.join(', ')}`);
    }
    const argStart = lead + m[0].length;
    const rest = body.slice(m[0].length);
    if (rest === '') throw err(lead + word.length + 1, `${upper} needs an argument`, `write ${upper} ${example(upper)}`);
    const arg = splitArgument(rest, (off, msg, hint) => err(argStart + off + 1, msg, hint), upper);
    const column = argStart + 1;
    if (upper in SINGLE_KEYWORDS) {
      const key = SINGLE_KEYWORDS[upper as keyof typeof SINGLE_KEYWORDS];
      const prev = seen.get(key);
      if (prev !== undefined) throw err(lead + 1, `${upper} given twice (first on line ${prev})`, `keep one ${upper} line`);
      seen.set(key, line);
      mf[key] = arg;
    } else {
      const key: ListKey = LIST_KEYWORDS[upper as keyof typeof LIST_KEYWORDS];
      if (!mf[key].some((e) => e.pattern === arg)) mf[key].push({ pattern: arg, line, column });
    }
  });
  return mf;
}

/** One argument: quoted or bare, with `\` escapes; anything after it is an error. */
function splitArgument(
  s: string,
  err: (offset: number, msg: string, hint?: string) => Error,
  keyword: string,
): string {
  let out = '';
  let i = 0;
  let quoted = false;
  let sawQuote = false;
  for (; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\') {
      if (i + 1 >= s.length) throw err(i, 'a backslash ends the line', 'line continuation is not supported; write the argument on one line');
      out += s[++i];
    } else if (c === '"') {
      quoted = !quoted;
      sawQuote = true;
    } else if (!quoted && /\s/.test(c)) {
      break;
    } else {
      out += c;
    }
  }
  if (quoted) throw err(s.lastIndexOf('"'), 'unclosed double quote', 'close the quote: "my file.bin"');
  const extra = s.slice(i).trim();
  if (extra !== '') {
    const at = s.indexOf(extra, i);
    if (extra.startsWith('#')) throw err(at, 'comments must be on their own line', `move ${JSON.stringify(extra)} to a line of its own`);
    if (keyword in SINGLE_KEYWORDS) {
      // NAME, ARCH, …: one value, not a list of paths; a second line would be "given twice".
      const what = keyword === 'NAME' ? `${keyword} is the model's name` : `${keyword} holds one value`;
      const first = s.slice(0, i).trim();
      throw err(at, `${keyword} takes one value, found more`, `${what}: one word (${keyword} ${first}), or quote it (${keyword} "${s.trim()}")`);
    }
    throw err(at, `${keyword} takes one argument, found more`, `quote a path with blanks ("${s.trim()}") or write one ${keyword} line per path`);
  }
  if (out === '') throw err(0, sawQuote ? 'empty argument' : `${keyword} needs an argument`, `write ${keyword} ${example(keyword)}`);
  return out;
}

function example(keyword: string): string {
  const ex: Record<string, string> = {
    NAME: 'my-model', ARCH: 'transformer', FAMILY: 'llama', FORMAT: 'safetensors', PARAMSIZE: '8b',
    PRECISION: 'bf16', QUANTIZATION: 'q4_k_m', CONFIG: 'config.json', MODEL: '*.safetensors',
    CODE: '*.py', DOC: 'README.md', DATASET: 'data/**',
  };
  return ex[keyword] ?? 'VALUE';
}

/** The keyword nearest by edit distance, for "did you mean": one edit, or two in a long word. */
function closestKeyword(word: string): string | undefined {
  let best: string | undefined;
  let bestD = word.length >= 5 ? 3 : 2;
  for (const k of KEYWORDS) {
    const d = editDistance(word, k);
    if (d < bestD) [best, bestD] = [k, d];
  }
  return best;
}


/** Quotes an argument when it holds blanks, quotes, backslashes or a leading `#`. */
function quote(v: string): string {
  if (v !== '' && !/[\s"\\]/.test(v) && !v.startsWith('#')) return v;
  return `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/**
 * Writes a Modelfile that parses back to the same value. No timestamp, so generating twice over
 * the same directory gives the same text.
 */
export function formatModelfile(mf: Modelfile): string {
  const out: string[] = ['# Modelfile generated by mpk (CNCF ModelPack grammar, compatible with modctl)', ''];
  for (const [kw, key] of Object.entries(SINGLE_KEYWORDS)) {
    const v = mf[key];
    if (v !== undefined && v !== '') out.push(`${kw} ${quote(v)}`);
  }
  const titles: Record<ListKey, string> = {
    config: 'Configuration and tokenizer files',
    model: 'Model weights',
    code: 'Code',
    doc: 'Documentation',
    dataset: 'Datasets',
  };
  for (const [kw, key] of Object.entries(LIST_KEYWORDS)) {
    if (mf[key].length === 0) continue;
    out.push('', `# ${titles[key]}`);
    for (const e of mf[key]) out.push(`${kw} ${quote(e.pattern)}`);
  }
  return out.join('\n') + '\n';
}
