import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkLabfileText } from '../../../lab/load.js';

const dir = path.join(import.meta.dirname, '../../fixtures/bad');
const cases = readdirSync(dir)
  .filter((f) => f.endsWith('.yaml'))
  .sort();

describe('bad Labfiles', () => {
  it('has a corpus', () => {
    expect(cases.length).toBeGreaterThanOrEqual(35);
  });

  it.each(cases)('%s is rejected with the expected file:line:col messages', (name) => {
    const r = checkLabfileText(readFileSync(path.join(dir, name), 'utf8'), name);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const got = r.issues.map((i) => `${i.line}:${i.col}: ${i.message}`).join('\n') + '\n';
    const expected = readFileSync(path.join(dir, name.replace(/\.yaml$/, '.expected')), 'utf8');
    expect(got).toBe(expected);
    // Every located issue carries its source line for the caret display.
    for (const i of r.issues) if (i.line > 0) expect(i.source).toBeTypeOf('string');
  });
});
