/**
 * The nesting depth of a JSON text, found by one pass over its bytes before it is parsed: a
 * manifest is a few levels deep, and a 200,000-deep array, which JSON.parse takes, would be stored
 * and served to clients whose parsers (or whose walks of the document) recurse and overflow.
 * Brackets inside strings do not count; the text need not be valid JSON (the parser judges that).
 */
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;

/** True when arrays and objects nest more than `max` levels deep somewhere in `bytes`. */
export function nestedDeeperThan(bytes: Uint8Array, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) inString = true;
    else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > max) return true;
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) depth--;
  }
  return false;
}
