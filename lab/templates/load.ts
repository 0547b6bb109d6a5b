import { existsSync, readFileSync, readdirSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { LabfileError, type Issue } from '../errors.js';
import { packageRoot } from '../runtime/package-root.js';
import { CONTROL_CHAR_RE } from '../labfile/schema.js';
import { parseTemplate } from './parse.js';
import type { Template } from './schema.js';

/** The project's vm-templates/ folder, found from this module whether run from source or dist/. */
export function templatesDir(): string {
  return path.join(packageRoot(), 'vm-templates');
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

/**
 * What is wrong with a template reference written in a Labfile, if anything: a name in
 * vm-templates/, or the path of a .yaml file inside the Labfile's folder. A Labfile must
 * not make lab read (and quote in its messages) files elsewhere, such as /etc/shadow.
 */
export function labfileTemplateRefProblem(ref: string): string | undefined {
  if (CONTROL_CHAR_RE.test(ref)) return `template ${JSON.stringify(ref)} must not contain control characters`;
  if (!isTemplatePath(ref)) return undefined;
  if (path.isAbsolute(ref))
    return `template path ${ref} must be relative to the Labfile's folder (or name a template in vm-templates/)`;
  if (ref.split('/').includes('..'))
    return `template path ${ref} must not leave the Labfile's folder (no "..")`;
  if (!/\.ya?ml$/.test(ref)) return `template path ${ref} must name a .yaml file`;
  return undefined;
}

export interface LoadedTemplate {
  template: Template;
  file: string;
}

/**
 * Loads a template by name or path (relative to the Labfile's folder).
 * Returns issues instead of throwing so the Labfile validator can report them all.
 * `confined`: a template path must really be inside `labfileDir` (symbolic links followed).
 */
export function loadTemplate(
  ref: string,
  labfileDir: string,
  options: { confined?: boolean } = {},
): { ok: true; value: LoadedTemplate } | { ok: false; message: string; issues?: Issue[] } {
  if (CONTROL_CHAR_RE.test(ref))
    return { ok: false, message: `template ${JSON.stringify(ref)} must not contain control characters` };
  let file: string;
  if (isTemplatePath(ref)) {
    file = path.resolve(labfileDir, ref);
    if (options.confined) {
      // A missing file (or folder) is reported when it is read, below.
      const real = realpathOrUndefined(file);
      const dir = realpathOrUndefined(labfileDir) ?? path.resolve(labfileDir);
      if (real !== undefined && !real.startsWith(dir + path.sep))
        return {
          ok: false,
          message: `template path ${ref} leads out of the Labfile's folder (through a symbolic link)`,
        };
    }
  } else {
    if (!/^[a-z][a-z0-9.-]{0,40}$/.test(ref))
      return { ok: false, message: `template ${JSON.stringify(ref)} is not a valid template name` };
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

function realpathOrUndefined(p: string): string | undefined {
  try {
    return realpathSync(p);
  } catch {
    return undefined;
  }
}

export function loadTemplateOrThrow(ref: string, labfileDir: string): LoadedTemplate {
  const r = loadTemplate(ref, labfileDir);
  if (!r.ok) throw new LabfileError(r.issues ?? [{ file: ref, line: 0, col: 0, message: r.message }]);
  return r.value;
}
