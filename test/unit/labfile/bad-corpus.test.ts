import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkLabfileText } from '../../../lab/spec/load.js';
import { parseTemplate } from '../../../lab/templates/parse.js';

const dir = path.join(import.meta.dirname, '../../fixtures/bad');
const cases = readdirSync(dir)
  .filter((f) => f.endsWith('.yaml'))
  .sort();
const templateDir = path.join(dir, 'templates');
const templateCases = readdirSync(templateDir)
  .filter((f) => f.endsWith('.yaml'))
  .sort();

const lines = (issues: { line: number; col: number; message: string }[]) =>
  issues.map((i) => `${i.line}:${i.col}: ${i.message}`).join('\n') + '\n';

describe('bad Labfiles', () => {
  it('has a corpus', () => {
    expect(cases.length).toBeGreaterThanOrEqual(90);
  });

  it.each(cases)('%s is rejected with the expected file:line:col messages', (name) => {
    // Under its real path, as the CLI sees it: template paths resolve beside the Labfile.
    const file = path.join(dir, name);
    const r = checkLabfileText(readFileSync(file, 'utf8'), file);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const expected = readFileSync(path.join(dir, name.replace(/\.yaml$/, '.expected')), 'utf8');
    expect(lines(r.issues)).toBe(expected);
    // Every located issue carries its source line for the caret display.
    for (const i of r.issues) if (i.line > 0) expect(i.source).toBeTypeOf('string');
  });
});

describe('bad templates', () => {
  it('has a corpus', () => {
    expect(templateCases.length).toBeGreaterThanOrEqual(30);
  });

  it.each(templateCases)('%s is rejected at its own file:line:col, through the Labfile using it', (name) => {
    const file = path.join(templateDir, name);
    const t = parseTemplate(readFileSync(file, 'utf8'), file);
    expect(t.ok).toBe(false);
    if (t.ok) return;
    const expected = readFileSync(file.replace(/\.yaml$/, '.expected'), 'utf8');
    expect(lines(t.issues)).toBe(expected);
    for (const i of t.issues) expect(i.line).toBeGreaterThan(0);

    // The Labfile beside it (template: ./NAME.yaml) is refused at its template key, and
    // the message names the template file with each of its issues' line:col.
    const labfile = file.replace(/\.yaml$/, '.Labfile');
    const r = checkLabfileText(readFileSync(labfile, 'utf8'), labfile);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.issues).toHaveLength(1);
    const [issue] = r.issues;
    expect([issue!.file, issue!.line, issue!.col]).toEqual([labfile, 2, 11]);
    expect(issue!.message.split('\n')).toEqual([
      `template ${file} is invalid`,
      ...t.issues.map((i) => `    ${file}:${i.line}:${i.col}: ${i.message}`),
    ]);
  });
});
