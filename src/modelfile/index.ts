/** The Modelfile: parse, format, generate from a directory, resolve to files. */
export { parseModelfile, formatModelfile } from './parse.js';
export { generateModelfile, type GenerateOptions, type GenerateResult } from './generate.js';
export { resolvePatterns } from './resolve.js';
export { classifyFile, isSkippedByDefault, WEIGHT_SIZE_THRESHOLD } from './classify.js';
export type { Modelfile, PatternEntry, ResolvedFile } from './types.js';
