// Zod's issues in the words of a Labfile's author: located (file:line:col), naming the
// value (`nodes[1].files[0].path`), with "did you mean" for a misspelt key. Used for
// Labfiles (parse.ts) and templates (../templates/parse.ts).
import type { z } from 'zod';
import type { Issue } from '../errors.js';
import { editDistance } from './edit-distance.js';
import type { PathKey, SourceMap } from './parse.js';
import type { Refused } from './salvage.js';

/** Options of zodIssues and zodRefusals. */
interface ZodIssueOptions {
  schemaFor?: (path: PathKey[]) => z.ZodType | undefined;
  /** Known keys by scope (the first key of the path; "node" for a Labfile node), for "did you mean". */
  keys?: Record<string, readonly string[]>;
  prefix?: PathKey[];
}

/**
 * Turns zod issues into located, readable issues. `schemaFor` names, for a path where the
 * schema is a union, the alternative the user evidently meant (a node with `count` is a
 * group): issues under that path are reported against it, not as "invalid input" or as
 * the other alternative's complaints (zod reports the one alternative that did not stop early).
 */
export function zodIssues(
  error: { issues: readonly z.core.$ZodIssue[] },
  source: SourceMap,
  data?: unknown,
  options: ZodIssueOptions = {},
): Issue[] {
  return zodRefusals(error, source, data, options).map((r) => r.issue);
}

/** zodIssues, each with the path of the value refused (and the unknown key, the one meant). */
export function zodRefusals(
  error: { issues: readonly z.core.$ZodIssue[] },
  source: SourceMap,
  data: unknown,
  options: ZodIssueOptions,
): (Refused & { issue: Issue })[] {
  const { schemaFor, keys = KNOWN_KEYS, prefix = [] } = options;
  const refusals: (Refused & { issue: Issue })[] = [];
  const redone = new Set<string>();
  for (const zi of error.issues) {
    const path = [...prefix, ...zi.path.filter((k): k is PathKey => typeof k !== 'symbol')];
    if (schemaFor && data !== undefined) {
      const at = Array.from({ length: path.length + 1 }, (_, n) => path.slice(0, path.length - n)).find(
        (p) => schemaFor(p) !== undefined,
      );
      if (at) {
        const key = JSON.stringify(at);
        if (redone.has(key)) continue;
        const again = schemaFor(at)!.safeParse(valueAt(data, at));
        if (!again.success) {
          redone.add(key);
          refusals.push(...zodRefusals(again.error, source, data, { keys, prefix: at }));
          continue;
        }
      }
    }
    if (zi.code === 'unrecognized_keys') {
      for (const key of zi.keys) {
        const meant = closestKey(key, path, keys);
        const issue = source.issueAt(
          path,
          `unknown key ${JSON.stringify(key)}${meant ? ` (did you mean "${meant}"?)` : ''}`,
          { atKey: key },
        );
        refusals.push({ path, unknownKey: key, ...(meant ? { meant } : {}), issue });
      }
      continue;
    }
    // zod adds a "safe integer" issue beside the real bound for huge numbers: keep the useful one.
    if (
      zi.code === 'too_big' &&
      zi.maximum === Number.MAX_SAFE_INTEGER &&
      error.issues.some((o) => o !== zi && o.path.join('.') === zi.path.join('.'))
    )
      continue;
    const message = describeZodIssue(zi, path, data === undefined ? undefined : valueAt(data, path));
    refusals.push({ path, issue: source.issueAt(path, message) });
  }
  return refusals;
}

export function valueAt(data: unknown, path: PathKey[]): unknown {
  let cur = data;
  for (const k of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PathKey, unknown>)[k];
  }
  return cur;
}

const KNOWN_KEYS: Record<string, readonly string[]> = {
  '': [
    'name',
    'template',
    'libvirt',
    'accelerator',
    'tcg',
    'network',
    'defaults',
    'ssh',
    'services',
    'etcd',
    'nodes',
    'units',
    'cloudConfig',
  ],
  network: ['mode', 'bridge', 'cidr', 'gateway', 'dns', 'forward'],
  tcg: ['tbCache'],
  node: [
    'name',
    'ip',
    'mac',
    'template',
    'cpus',
    'memory',
    'disk',
    'services',
    'files',
    'cloudConfig',
    'count',
    'start',
  ],
};

/** The known key a misspelt one most likely means ("did you mean"), by edit distance. */
function closestKey(
  key: string,
  path: PathKey[],
  known: Record<string, readonly string[]>,
): string | undefined {
  const scope = path.length === 0 ? '' : path[0] === 'nodes' ? 'node' : String(path[0]);
  const candidates = known[scope] ?? [];
  let best: string | undefined;
  let bestDistance = 3;
  for (const c of candidates) {
    if (c === key) continue;
    const d = editDistance(key.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best;
}

/** `nodes[1].files[0].path` style name of the value, from its last named key on. */
function nameOf(path: PathKey[]): string {
  let i = path.length - 1;
  while (i > 0 && typeof path[i] === 'number') i--;
  return path
    .slice(Math.max(0, i))
    .map((k) => (typeof k === 'number' ? `[${k}]` : k))
    .join('.')
    .replace(/\.\[/g, '[');
}

function describeZodIssue(zi: z.core.$ZodIssue, path: PathKey[], value: unknown): string {
  const what = path.length > 0 ? `${nameOf(path)}: ` : '';
  switch (zi.code) {
    case 'invalid_type':
      if (value === undefined) return `missing required key "${String(path[path.length - 1])}"`;
      return `${what}expected ${zi.expected}, got ${describeValue(value)}`;
    case 'invalid_value':
      return `${what}expected one of ${zi.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'too_small':
      return `${what}${zi.message.replace(/^Too small: /, '')}`;
    case 'too_big':
      return `${what}${zi.message.replace(/^Too big: /, '')}`;
    default:
      return `${what}${zi.message}`;
  }
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (v instanceof Uint8Array) return 'binary data';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'number' && !Number.isFinite(v)) return `${String(v)} (not a finite number)`;
  // Long text is cut: a message quotes the value, never a whole file read by mistake.
  if (typeof v === 'string' && v.length > 60) return `string ${JSON.stringify(v.slice(0, 57))}…`;
  return `${typeof v} ${JSON.stringify(v)}`;
}
