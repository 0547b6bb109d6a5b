import type { Issue } from '../errors.js';
import type { PathKey, SourceMap } from '../labfile/parse.js';

/**
 * What resolving a Labfile finds, positioned in its source: every error at once, in the
 * order the steps find them (errors refuse the Labfile; warnings are shown, not refused).
 */
export interface Report {
  readonly source: SourceMap;
  readonly issues: Issue[];
  readonly warnings: Issue[];
  /** Records an error at `path`, or at the key `atKey` of the mapping at `path`. */
  readonly at: (path: PathKey[], message: string, atKey?: string) => void;
}

/** An empty report whose issues are positioned in `source`. */
export function newReport(source: SourceMap): Report {
  const issues: Issue[] = [];
  return {
    source,
    issues,
    warnings: [],
    at: (path, message, atKey) => {
      issues.push(source.issueAt(path, message, atKey ? { atKey } : {}));
    },
  };
}

/** The issues without repeats (same line, column and message), in their first order. */
export function dedupe(issues: Issue[]): Issue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const key = `${i.line}:${i.col}:${i.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** The issues in the order of the text they point at (stable: at one place, as found). */
export function inSourceOrder(issues: Issue[]): Issue[] {
  return issues
    .map((issue, i) => ({ issue, i }))
    .sort((a, b) => a.issue.line - b.issue.line || a.issue.col - b.issue.col || a.i - b.i)
    .map((x) => x.issue);
}
