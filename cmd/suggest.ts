/** "Did you mean": the candidates closest to a mistyped word, for usage errors. */
import { editDistance } from '../lab/labfile/edit-distance.js';

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
    .map((c) => ({ c, d: editDistance(word, c) }))
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
