/** "Did you mean": the nearest of a few words by edit distance, for a mistyped command or flag. */
import { editDistance } from '../internal/edit-distance.js';

/** The candidate nearest to `word`: one edit away, two for words of five letters or more; else undefined. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  const w = word.toLowerCase();
  const all = [...candidates];
  let best: string | undefined;
  let bestD = w.length >= 5 ? 3 : 2;
  for (const c of all) {
    const d = editDistance(w, c.toLowerCase());
    if (d < bestD) [best, bestD] = [c, d];
  }
  // A prefix of exactly one candidate (`mpk ins`) is as good a guess as a typo.
  if (best === undefined && w.length >= 2) {
    const starts = all.filter((c) => c.toLowerCase().startsWith(w));
    if (starts.length === 1) best = starts[0];
  }
  return best;
}

export { editDistance as distance };
