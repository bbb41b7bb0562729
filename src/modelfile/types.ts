/** The Modelfile's data model: modctl's 12 keywords, single values and pattern lists. */
import type { LayerKind } from '../oci/media-types.js';

/** A CONFIG/MODEL/CODE/DOC/DATASET argument with its position, so errors can point at it. */
export interface PatternEntry {
  pattern: string;
  /** 1-based line of the keyword. */
  line: number;
  /** 1-based column where the argument starts. */
  column: number;
}

/** The single-value fields (NAME … QUANTIZATION), all optional. */
export interface ModelFields {
  name?: string;
  arch?: string;
  family?: string;
  format?: string;
  paramSize?: string;
  precision?: string;
  quantization?: string;
}

export interface Modelfile extends ModelFields {
  /** Name used in error positions (`Modelfile`, `<stdin>`, a path). */
  file: string;
  config: PatternEntry[];
  model: PatternEntry[];
  code: PatternEntry[];
  doc: PatternEntry[];
  dataset: PatternEntry[];
}

/** The single-value fields, by keyword. */
export const SINGLE_KEYWORDS = {
  NAME: 'name',
  ARCH: 'arch',
  FAMILY: 'family',
  FORMAT: 'format',
  PARAMSIZE: 'paramSize',
  PRECISION: 'precision',
  QUANTIZATION: 'quantization',
} as const satisfies Record<string, keyof Modelfile>;

/** The multi-value keywords and the layer kind each one makes. */
export const LIST_KEYWORDS = {
  CONFIG: 'config',
  MODEL: 'model',
  CODE: 'code',
  DOC: 'doc',
  DATASET: 'dataset',
} as const satisfies Record<string, keyof Modelfile>;

export type SingleKey = (typeof SINGLE_KEYWORDS)[keyof typeof SINGLE_KEYWORDS];
export type ListKey = (typeof LIST_KEYWORDS)[keyof typeof LIST_KEYWORDS];

export const LIST_KIND: Record<ListKey, LayerKind> = {
  config: 'config',
  model: 'weight',
  code: 'code',
  doc: 'doc',
  dataset: 'dataset',
};

export const KEYWORDS: readonly string[] = [...Object.keys(SINGLE_KEYWORDS), ...Object.keys(LIST_KEYWORDS)];

/** A file chosen by a Modelfile: its kind, its path relative to the build context (POSIX), and where it is. */
export interface ResolvedFile {
  kind: LayerKind;
  path: string;
  absPath: string;
}

export function emptyModelfile(file = 'Modelfile'): Modelfile {
  return { file, config: [], model: [], code: [], doc: [], dataset: [] };
}
