/** "Did you mean": the candidates closest to a mistyped word, for usage errors. */

/** Edit distance with transpositions (optimal string alignment). */
export function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  return d[a.length]![b.length]!;
}

/**
 * The candidates a typo most likely meant: those that start with it (a prefix typed), else
 * the nearest within a third of the word's length (at least 1, at most 3 edits).
 */
export function suggest(word: string, candidates: readonly string[]): string[] {
  if (!word) return [];
  const prefixed = candidates.filter((c) => c.startsWith(word) && c !== word);
  if (prefixed.length > 0 && prefixed.length <= 3) return prefixed;
  const limit = Math.min(3, Math.max(1, Math.floor(word.length / 3)));
  const scored = candidates
    .map((c) => ({ c, d: distance(word, c) }))
    .filter((x) => x.d <= limit)
    .sort((x, y) => x.d - y.d || x.c.localeCompare(y.c));
  const best = scored[0]?.d;
  return scored.filter((x) => x.d === best).map((x) => x.c);
}

/** ` (did you mean X or Y?)`, or nothing. */
export function didYouMean(word: string, candidates: readonly string[]): string {
  const s = suggest(word, candidates);
  return s.length ? ` (did you mean ${s.join(' or ')}?)` : '';
}
