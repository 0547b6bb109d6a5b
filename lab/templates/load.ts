import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LabfileError, type Issue } from '../errors.js';
import { parseTemplate } from './parse.js';
import type { Template } from './schema.js';

/** The project's vm-templates/ folder, found from this module whether run from source or dist/. */
export function templatesDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(path.join(dir, 'vm-templates')) && existsSync(path.join(dir, 'package.json'))) {
      return path.join(dir, 'vm-templates');
    }
    dir = path.dirname(dir);
  }
  throw new Error('vm-templates/ not found beside the lab package');
}

export function listTemplateNames(): string[] {
  return readdirSync(templatesDir())
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.slice(0, -5))
    .sort();
}

/** A template reference is a path when it has a slash or ends in .yaml; else a name in vm-templates/. */
export function isTemplatePath(ref: string): boolean {
  return ref.includes('/') || ref.endsWith('.yaml') || ref.endsWith('.yml');
}

export interface LoadedTemplate {
  template: Template;
  file: string;
}

/**
 * Loads a template by name or path (relative to the Labfile's folder).
 * Returns issues instead of throwing so the Labfile validator can report them all.
 */
export function loadTemplate(
  ref: string,
  labfileDir: string,
): { ok: true; value: LoadedTemplate } | { ok: false; message: string; issues?: Issue[] } {
  let file: string;
  if (isTemplatePath(ref)) {
    file = path.resolve(labfileDir, ref);
  } else {
    if (!/^[a-z][a-z0-9.-]{0,40}$/.test(ref))
      return { ok: false, message: `template "${ref}" is not a valid template name` };
    file = path.join(templatesDir(), `${ref}.yaml`);
    if (!existsSync(file)) {
      return { ok: false, message: `unknown template "${ref}" (known: ${listTemplateNames().join(', ')})` };
    }
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return {
      ok: false,
      message: `cannot read template ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    };
  }
  const parsed = parseTemplate(text, file);
  if (!parsed.ok) return { ok: false, message: `template ${file} is invalid`, issues: parsed.issues };
  return { ok: true, value: { template: parsed.value, file } };
}

export function loadTemplateOrThrow(ref: string, labfileDir: string): LoadedTemplate {
  const r = loadTemplate(ref, labfileDir);
  if (!r.ok) throw new LabfileError(r.issues ?? [{ file: ref, line: 0, col: 0, message: r.message }]);
  return r.value;
}
