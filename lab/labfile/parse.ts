import { isAlias, isMap, isNode, isPair, isScalar, isSeq, parseDocument, visit, type Document } from 'yaml';
import { z } from 'zod';
import type { Issue } from '../errors.js';
import { salvageLabfile, type Refused, type Salvaged } from './salvage.js';
import { labfileSchema, type Labfile } from './schema.js';
import { valueAt, zodRefusals } from './zod-issues.js';

export type PathKey = string | number;

/** A parsed YAML document that can say where any value came from. */
export class SourceMap {
  private readonly lines: string[];
  /** The path each issue made here is about: to tell which value an issue speaks of. */
  private readonly paths = new WeakMap<Issue, readonly PathKey[]>();
  constructor(
    readonly file: string,
    text: string,
    private readonly doc: Document,
    private readonly counter: LinePositions,
  ) {
    this.lines = text.split(/\r?\n/);
  }

  /**
   * An issue located at the value at `path` (or at its nearest existing parent).
   * `lineInBlock`: the problem is on that line (1-based) of a block scalar's text (a unit
   * file written with `content: |`); the issue then points at that line of the Labfile.
   */
  issueAt(
    path: readonly PathKey[],
    message: string,
    options: { atKey?: string; lineInBlock?: number } = {},
  ): Issue {
    const issue = this.locate(path, message, options);
    this.paths.set(issue, options.atKey === undefined ? path : [...path, options.atKey]);
    return issue;
  }

  /** The path of the value an issue made by issueAt is about (`atKey` appended). */
  pathOf(issue: Issue): readonly PathKey[] | undefined {
    return this.paths.get(issue);
  }

  private locate(
    path: readonly PathKey[],
    message: string,
    options: { atKey?: string; lineInBlock?: number },
  ): Issue {
    const offset = this.offsetOf(path, options.atKey);
    if (offset === undefined) return { file: this.file, line: 0, col: 0, message };
    let { line, col } = this.counter.linePos(offset);
    const value: unknown = this.doc.getIn(path, true);
    if (
      options.lineInBlock !== undefined &&
      isScalar(value) &&
      (value.type === 'BLOCK_LITERAL' || value.type === 'BLOCK_FOLDED')
    ) {
      line += options.lineInBlock;
      const text = this.lines[line - 1] ?? '';
      col = text.length - text.trimStart().length + 1;
    }
    return { file: this.file, line, col, message, source: this.lines[line - 1] ?? '' };
  }

  private offsetOf(path: readonly PathKey[], atKey?: string): number | undefined {
    let node: unknown = this.doc.contents;
    let offset = isNode(node) ? node.range?.[0] : undefined;
    for (const key of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && keyString(p.key.value) === String(key));
        if (!pair) break;
        node = pair.value;
        const at = isNode(node) ? node.range?.[0] : isNode(pair.key) ? pair.key.range?.[0] : undefined;
        if (at !== undefined) offset = at;
      } else if (isSeq(node) && typeof key === 'number') {
        node = node.items[key];
        if (isNode(node) && node.range) offset = node.range[0];
        else break;
      } else break;
    }
    if (atKey !== undefined && isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && keyString(p.key.value) === atKey);
      if (pair && isNode(pair.key) && pair.key.range) offset = pair.key.range[0];
    }
    return offset;
  }
}

/** A mapping key as it ends up in the plain data (`~:` becomes "", `1:` becomes "1"). */
function keyString(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  return JSON.stringify(value) ?? '';
}

/** Two keys that would be one in the plain data are duplicates (`1:` and `"1":`). */
function sameKey(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  return isScalar(a) && isScalar(b) && keyString(a.value) === keyString(b.value);
}

/**
 * Line and column (1-based) of an offset, from the text's own newlines. (yaml's
 * LineCounter, fed by its lexer, can miss a newline after a broken flow collection and
 * put every later issue a line too high.)
 */
export class LinePositions {
  private readonly starts: number[] = [0];
  constructor(text: string) {
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) this.starts.push(i + 1);
  }

  linePos(offset: number): { line: number; col: number } {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, col: offset - this.starts[lo]! + 1 };
  }
}

export type ParseResult<T> = { ok: true; value: T; source: SourceMap } | { ok: false; issues: Issue[] };

/** YAML text -> plain data with its source map, or syntax issues. Pure. */
export function parseYaml(
  text: string,
  file: string,
  what = 'a Labfile',
): { ok: true; data: unknown; source: SourceMap } | { ok: false; issues: Issue[] } {
  // A byte order mark is not a column: strip it so positions match what editors show.
  if (text.startsWith('\ufeff')) text = text.slice(1);
  const counter = new LinePositions(text);
  const doc = parseDocument(text, {
    prettyErrors: false,
    uniqueKeys: sameKey,
    strict: true,
  });
  const lines = text.split(/\r?\n/);
  const problems = [...doc.errors, ...doc.warnings];
  // The parser recurses: a document nested hundreds of levels deep overflows its stack,
  // at a place that depends on the stack size. Report it once, where the nesting gets deep.
  const overflow = problems.find((e) => e.message.includes('Maximum call stack size exceeded'));
  if (overflow) {
    const { line, col } = counter.linePos(deepNestingAt(text) ?? overflow.pos[0]);
    return {
      ok: false,
      issues: [
        {
          file,
          line,
          col,
          message: 'YAML: nested too deeply (a Labfile needs a few levels, not hundreds)',
          source: lines[line - 1] ?? '',
        },
      ],
    };
  }
  if (problems.length > 0) {
    return {
      ok: false,
      issues: problems.map((e) => {
        const { line, col } = counter.linePos(e.pos[0]);
        const message = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
        return { file, line, col, message: `YAML: ${message}`, source: lines[line - 1] ?? '' };
      }),
    };
  }
  // Aliases could expand into a huge document (billion laughs): refuse them outright.
  // A key that is a list or a mapping has no place in a Labfile (JS would stringify it).
  const refused: Issue[] = [];
  const refuse = (offset: number | undefined, message: string) => {
    const { line, col } = counter.linePos(offset ?? 0);
    refused.push({ file, line, col, message, source: lines[line - 1] ?? '' });
  };
  visit(doc, {
    Alias(_, node) {
      refuse(node.range?.[0], `YAML aliases (*name) are not allowed in ${what}: write the value out`);
    },
    Pair(_, pair) {
      if (isNode(pair.key) && !isScalar(pair.key) && !isAlias(pair.key))
        refuse(pair.key.range?.[0], 'YAML: a key must be a plain value, not a list or a mapping');
    },
  });
  if (refused.length > 0) return { ok: false, issues: refused };
  const data: unknown = doc.toJS();
  return { ok: true, data, source: new SourceMap(file, text, doc, counter) };
}

/**
 * Where the text first nests deeper than a Labfile ever does: 64 open flow brackets, or a
 * line that starts past column 200 (block nesting: indentation and `- ` markers).
 */
function deepNestingAt(text: string): number | undefined {
  let depth = 0;
  let quote: string | undefined;
  let lineStart = true;
  let indent = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\n') {
      lineStart = true;
      indent = 0;
      continue;
    }
    if (lineStart) {
      if (c === ' ' || c === '-' || c === '\t') {
        if (++indent > 200) return i;
        continue;
      }
      lineStart = false;
    }
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '[' || c === '{') {
      if (++depth > 64) return i;
    } else if (c === ']' || c === '}') depth = Math.max(0, depth - 1);
  }
  return undefined;
}

/** What parseLabfileShape finds: the shape, or its issues and, when it can be had, a salvage. */
export type LabfileShape =
  | { ok: true; value: Labfile; source: SourceMap }
  | { ok: false; issues: Issue[]; salvaged?: Salvaged & { source: SourceMap } };

/**
 * Labfile text -> validated shape. Pure. The cross-field rules (duplicates, CIDR membership,
 * templates, ...) are checked after, by resolveLab in ../plan/resolve.ts and its steps. A
 * shape the schema refuses comes with its salvage (every refused value replaced: salvage.ts),
 * so that those rules still run on the rest and every problem is told in one run.
 */
export function parseLabfileShape(text: string, file: string): LabfileShape {
  const parsed = parseYaml(text, file);
  if (!parsed.ok) return parsed;
  if (parsed.data === null || typeof parsed.data !== 'object' || Array.isArray(parsed.data)) {
    return {
      ok: false,
      issues: [
        {
          file,
          line: 1,
          col: 1,
          message: 'expected a mapping with name, template, network and nodes',
          source: text.split(/\r?\n/)[0] ?? '',
        },
      ],
    };
  }
  const { source } = parsed;
  const checked = checkShape(labfileSchema, parsed.data, source);
  if (checked.ok) return { ok: true, value: checked.value, source };
  const salvaged = salvageLabfile(parsed.data, checked.refusals, (data) =>
    checkShape(salvageSchema, data, source),
  );
  return {
    ok: false,
    issues: checked.refusals.map((r) => r.issue),
    ...(salvaged ? { salvaged: { ...salvaged, source } } : {}),
  };
}

/** The schema a salvage must pass: the Labfile's, but a lab whose every node was refused has none. */
const salvageSchema = labfileSchema.extend({ nodes: z.array(labfileSchema.shape.nodes.element) });

/** Data -> Labfile, or what the schema refuses, each with its path and located issue. */
function checkShape(
  schema: z.ZodType<Labfile>,
  data: unknown,
  source: SourceMap,
): { ok: true; value: Labfile } | { ok: false; refusals: (Refused & { issue: Issue })[] } {
  const result = schema.safeParse(data);
  if (result.success) return { ok: true, value: result.data };
  const schemaFor = (path: PathKey[]): z.ZodType | undefined => {
    if (path.length === 2 && path[0] === 'nodes') {
      const item = valueAt(data, path);
      const options = labfileSchema.shape.nodes.element.options;
      return item !== null && typeof item === 'object' && 'count' in item ? options[1] : options[0];
    }
    return undefined;
  };
  return { ok: false, refusals: zodRefusals(result.error, source, data, { schemaFor }) };
}
