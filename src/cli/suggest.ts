/** "Did you mean": the nearest of a few words by edit distance, for a mistyped command or flag. */

/** The candidate nearest to `word`: one edit away, two for words of five letters or more; else undefined. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  const w = word.toLowerCase();
  const all = [...candidates];
  let best: string | undefined;
  let bestD = w.length >= 5 ? 3 : 2;
  for (const c of all) {
    const d = distance(w, c.toLowerCase());
    if (d < bestD) [best, bestD] = [c, d];
  }
  // A prefix of exactly one candidate (`mpk ins`) is as good a guess as a typo.
  if (best === undefined && w.length >= 2) {
    const starts = all.filter((c) => c.toLowerCase().startsWith(w));
    if (starts.length === 1) best = starts[0];
  }
  return best;
}

/** Damerau (optimal string alignment) distance: a swapped pair (`biuld`) counts as one edit. */
export function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}
