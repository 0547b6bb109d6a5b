/** One line of a line diff: kept (' '), only in the old text ('-'), only in the new ('+'). */
export interface Edit {
  op: ' ' | '-' | '+';
  line: string;
}

/**
 * The shortest edit script from `a` to `b` (Myers, "An O(ND) Difference Algorithm"): a
 * greedy walk over the diagonals k = x - y, one round per edit, then back along the rounds
 * kept. Each round keeps only its diagonals -d..d: memory O(D²), not O((N+M)²). Pure.
 */
export function diffLines(a: readonly string[], b: readonly string[]): Edit[] {
  const max = a.length + b.length;
  const off = max + 1;
  // v[k + off]: the furthest x reached on diagonal k.
  const v = new Int32Array(2 * max + 3);
  const rounds: Int32Array[] = [];
  search: for (let d = 0; d <= max; d++) {
    rounds.push(v.slice(off - d, off + d + 1));
    for (let k = -d; k <= d; k += 2) {
      // Down (an insertion) from diagonal k+1, or right (a deletion) from k-1.
      let x =
        k === -d || (k !== d && v[off + k - 1]! < v[off + k + 1]!) ? v[off + k + 1]! : v[off + k - 1]! + 1;
      let y = x - k;
      while (x < a.length && y < b.length && a[x] === b[y]) [x, y] = [x + 1, y + 1];
      v[off + k] = x;
      if (x >= a.length && y >= b.length) break search;
    }
  }
  const edits: Edit[] = [];
  let [x, y] = [a.length, b.length];
  for (let d = rounds.length - 1; d >= 0; d--) {
    // What round d started from: the diagonals -d..d at index k + d.
    const at = (k: number) => rounds[d]![k + d]!;
    const k = x - y;
    const prevK = k === -d || (k !== d && at(k - 1) < at(k + 1)) ? k + 1 : k - 1;
    const prevX = d === 0 ? 0 : at(prevK);
    const prevY = d === 0 ? 0 : prevX - prevK;
    for (; x > prevX && y > prevY; y--) edits.push({ op: ' ', line: a[--x]! });
    if (d === 0) break;
    if (x === prevX) edits.push({ op: '+', line: b[--y]! });
    else edits.push({ op: '-', line: a[--x]! });
  }
  return edits.reverse();
}

/** A text's lines; whether it ends with a newline is said the way diff(1) says it. */
function linesOf(text: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  else lines.push(`${lines.pop()!}\n\\ No newline at end of file`);
  return lines;
}

/**
 * A unified diff (`diff -u`) of two texts under the headers `--- from` and `+++ to`, with
 * `context` lines around each change; '' when they are the same. Pure.
 */
export function unifiedDiff(before: string, after: string, from: string, to: string, context = 3): string {
  const edits = diffLines(linesOf(before), linesOf(after));
  const changed = edits.flatMap((e, i) => (e.op === ' ' ? [] : [i]));
  if (changed.length === 0) return '';
  // Hunks: changes closer than two contexts apart share one.
  const hunks: [number, number][] = [];
  for (const i of changed) {
    const last = hunks.at(-1);
    if (last && i - last[1] <= 2 * context + 1) last[1] = i;
    else hunks.push([i, i]);
  }
  let out = `--- ${from}\n+++ ${to}\n`;
  let [aLine, bLine, pos] = [0, 0, 0];
  for (const [first, last] of hunks) {
    const start = Math.max(0, first - context);
    const end = Math.min(edits.length - 1, last + context);
    for (; pos < start; pos++) [aLine, bLine] = [aLine + 1, bLine + 1];
    const body = edits.slice(start, end + 1);
    const aCount = body.filter((e) => e.op !== '+').length;
    const bCount = body.filter((e) => e.op !== '-').length;
    // An empty side is numbered by the line before it (diff -u: "-0,0").
    const range = (line: number, count: number) => `${count === 0 ? line : line + 1},${count}`;
    out += `@@ -${range(aLine, aCount)} +${range(bLine, bCount)} @@\n`;
    out += body.map((e) => `${e.op}${e.line}\n`).join('');
    [aLine, bLine, pos] = [aLine + aCount, bLine + bCount, end + 1];
  }
  return out;
}
