import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { diffLines, unifiedDiff } from '../../../lab/plan/diff.js';

/** Length of a longest common subsequence, the slow and obvious way. */
function lcs(a: string[], b: string[]): number {
  const row = new Array<number>(b.length + 1).fill(0);
  for (const x of a) {
    let diag = 0;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j]!;
      row[j] = x === b[j - 1] ? diag + 1 : Math.max(row[j]!, row[j - 1]!);
      diag = up;
    }
  }
  return row[b.length]!;
}

const lines = fc.array(fc.constantFrom('a', 'b', 'c', 'd', ''), { maxLength: 12 });

describe('diffLines', () => {
  it.each([
    [[], [], ''],
    [['a'], [], '-a'],
    [[], ['a'], '+a'],
    [['a', 'b', 'c'], ['a', 'c'], ' a -b  c'],
    [['a', 'b'], ['a', 'x', 'b'], ' a +x  b'],
    [['a'], ['b'], '-a +b'],
  ])('%j -> %j', (a, b, want) => {
    expect(
      diffLines(a, b)
        .map((e) => `${e.op}${e.line}`)
        .join(' '),
    ).toBe(want);
  });

  it('keeps a longest common subsequence and rebuilds both texts', () => {
    fc.assert(
      fc.property(lines, lines, (a, b) => {
        const edits = diffLines(a, b);
        expect(edits.filter((e) => e.op !== '+').map((e) => e.line)).toEqual(a);
        expect(edits.filter((e) => e.op !== '-').map((e) => e.line)).toEqual(b);
        expect(edits.filter((e) => e.op === ' ').length).toBe(lcs(a, b));
      }),
      { seed: 19, numRuns: 500 },
    );
  });
});

describe('unifiedDiff', () => {
  it('is empty for the same text', () => {
    expect(unifiedDiff('a\nb\n', 'a\nb\n', 'x', 'y')).toBe('');
  });

  it('gives hunks with three lines of context, far changes apart', () => {
    const before = Array.from({ length: 20 }, (_, i) => `line ${i + 1}`).join('\n') + '\n';
    const after = before.replace('line 2\n', 'line two\n').replace('line 18\n', '');
    expect(unifiedDiff(before, after, 'n1 user-data (applied)', 'n1 user-data (Labfile)')).toBe(
      [
        '--- n1 user-data (applied)',
        '+++ n1 user-data (Labfile)',
        '@@ -1,5 +1,5 @@',
        ' line 1',
        '-line 2',
        '+line two',
        ' line 3',
        ' line 4',
        ' line 5',
        '@@ -15,6 +15,5 @@',
        ' line 15',
        ' line 16',
        ' line 17',
        '-line 18',
        ' line 19',
        ' line 20',
        '',
      ].join('\n'),
    );
  });

  it.each([
    [9, 1],
    [10, 2],
  ])(
    'joins hunks whose contexts meet, as diff -u does: lines 2 and %i changed -> %i hunk(s)',
    (second, hunks) => {
      const before = Array.from({ length: 20 }, (_, i) => `${i + 1}`).join('\n') + '\n';
      const after = before.replace(/^2$/m, 'two').replace(new RegExp(`^${second}$`, 'm'), 'x');
      expect(unifiedDiff(before, after, 'x', 'y').match(/^@@ /gm)).toHaveLength(hunks);
    },
  );

  it('numbers an empty side as diff -u does, and says when a newline is missing', () => {
    expect(unifiedDiff('', 'a\n', 'x', 'y')).toBe('--- x\n+++ y\n@@ -0,0 +1,1 @@\n+a\n');
    expect(unifiedDiff('a\n', 'a', 'x', 'y')).toBe(
      '--- x\n+++ y\n@@ -1,1 +1,1 @@\n-a\n+a\n\\ No newline at end of file\n',
    );
  });

  it('is a patch: its hunks, applied at their line numbers, turn the old text into the new', () => {
    const text = lines.map((l) => (l.length ? `${l.join('\n')}\n` : ''));
    fc.assert(
      fc.property(text, text, (a, b) => {
        expect(patch(a, unifiedDiff(a, b, 'x', 'y'))).toBe(b);
      }),
      { seed: 19, numRuns: 500 },
    );
  });
});

/** Applies a unified diff of whole-line texts (each ending in a newline), checking every line it names. */
function patch(text: string, diff: string): string {
  const old = text.split('\n').slice(0, -1);
  const out: string[] = [];
  let at = 0;
  for (const hunk of diff.split(/^(?=@@ )/m).slice(1)) {
    const [head, ...body] = hunk.split('\n').slice(0, -1);
    const [, start, count] = /^@@ -(\d+),(\d+) \+\d+,\d+ @@$/.exec(head!)!.map(Number);
    const from = count === 0 ? start! : start! - 1;
    out.push(...old.slice(at, from));
    at = from;
    for (const line of body) {
      if (line[0] !== '+') expect(old[at++]).toBe(line.slice(1));
      if (line[0] !== '-') out.push(line.slice(1));
    }
  }
  out.push(...old.slice(at));
  return out.map((l) => `${l}\n`).join('');
}
