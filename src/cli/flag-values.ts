/** Numbers given as flags: one check and one message for every command. */
import { PackError } from '../errors.js';

/** A whole number of at least `min` (a zero where it would quietly mean "the default" or "nothing" is refused by min 1). */
export function wholeNumber(flag: string, text: unknown, min: number, example: string): number {
  const n = Number(text);
  if (typeof text !== 'string' || text.trim() === '' || !Number.isSafeInteger(n) || n < min) {
    throw new PackError('USAGE', `--${flag} ${JSON.stringify(text)}: not a whole number of at least ${min}`, { hint: `e.g. --${flag} ${example}` });
  }
  return n;
}

/** A number from `min` to `max`. */
export function numberIn(flag: string, text: unknown, min: number, max: number, example: string): number {
  const n = Number(text);
  if (typeof text !== 'string' || text.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new PackError('USAGE', `--${flag} ${JSON.stringify(text)}: not a number from ${min} to ${max}`, { hint: `e.g. --${flag} ${example}` });
  }
  return n;
}
