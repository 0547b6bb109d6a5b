import type { PathKey } from '../labfile/parse.js';
import type { Template } from '../templates/schema.js';
import type { Report } from './report.js';

/** What the resolver knows of each template reference: the template, or why it failed. */
export type TemplateLookup = (
  ref: string,
) => { ok: true; template: Template } | { ok: false; message: string };

/** The templates a Labfile uses, each found template looked up once. */
export interface UsedTemplates {
  /** The template `ref` names; when it cannot be had, why is reported at `path`. */
  use(ref: string, path: PathKey[]): Template | undefined;
  /** A template already found by `use`, without looking it up (or reporting) again. */
  get(ref: string): Template | undefined;
}

/** Looks templates up through `lookup`, remembering those found; a failed reference is tried again. */
export function usedTemplates(lookup: TemplateLookup, report: Report): UsedTemplates {
  const templates = new Map<string, Template>();
  return {
    use(ref, path) {
      if (templates.has(ref)) return templates.get(ref);
      const r = lookup(ref);
      if (!r.ok) {
        report.at(path, r.message);
        return undefined;
      }
      templates.set(ref, r.template);
      return r.template;
    },
    get: (ref) => templates.get(ref),
  };
}
