import { readFileSync } from 'node:fs';
import path from 'node:path';
import { LabfileError, type Issue } from '../errors.js';
import { parseLabfileShape } from '../labfile/parse.js';
import type { Labfile } from '../labfile/schema.js';
import type { LabSpec } from '../plan/model.js';
import { dedupe, inSourceOrder } from '../plan/report.js';
import { resolveLab } from '../plan/resolve.js';
import { labfileTemplateRefProblem, loadTemplate } from '../templates/load.js';

export interface LoadedLab {
  file: string;
  dir: string;
  labfile: Labfile;
  lab: LabSpec;
}

/** Default Labfile names looked for in the current folder. */
export const LABFILE_NAMES = ['Labfile.yaml', 'Labfile.yml', 'Labfile'];

/** Reads, validates and resolves a Labfile; throws LabfileError with every issue. */
export function loadLab(file: string): LoadedLab {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new LabfileError([
      {
        file,
        line: 0,
        col: 0,
        message: code === 'ENOENT' ? 'no such file' : `cannot read: ${code ?? String(err)}`,
      },
    ]);
  }
  const r = checkLabfileText(text, file);
  if (!r.ok) throw new LabfileError(r.issues);
  return {
    file,
    dir: path.dirname(path.resolve(file)),
    labfile: r.labfile,
    lab: { ...r.lab, source: path.resolve(file) },
  };
}

/**
 * Parses, validates and resolves Labfile text; templates are looked up beside `file`. Every
 * problem found, in the order of the text: the schema's, and those the cross-field checks
 * find in what the schema did not refuse (a salvage of the rest, ../labfile/salvage.ts).
 */
export function checkLabfileText(
  text: string,
  file: string,
): { ok: true; labfile: Labfile; lab: LabSpec } | { ok: false; issues: Issue[] } {
  const shape = parseLabfileShape(text, file);
  const usable = shape.ok ? { ...shape, unusable: [] } : shape.salvaged;
  if (!usable) return { ok: false, issues: inSourceOrder(shape.ok ? [] : shape.issues) };
  const dir = path.dirname(path.resolve(file));
  const resolved = resolveLab(
    usable.value,
    usable.source,
    (ref) => {
      const problem = labfileTemplateRefProblem(ref);
      if (problem) return { ok: false, message: problem };
      const r = loadTemplate(ref, dir, { confined: true });
      if (r.ok) return { ok: true, template: r.value.template };
      const detail = r.issues?.map((i) => `\n    ${i.file}:${i.line}:${i.col}: ${i.message}`).join('') ?? '';
      return { ok: false, message: r.message + detail };
    },
    usable.unusable,
  );
  if (shape.ok) return resolved.ok ? { ok: true, labfile: shape.value, lab: resolved.lab } : resolved;
  const later = resolved.ok ? [] : resolved.issues;
  return { ok: false, issues: inSourceOrder(dedupe([...shape.issues, ...later])) };
}
