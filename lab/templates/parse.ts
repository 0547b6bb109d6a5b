import type { Issue } from '../errors.js';
import { parseYaml, zodIssues, type ParseResult } from '../labfile/parse.js';
import { templateSchema, type Template } from './schema.js';

/** Template YAML text -> Template, or located issues. Pure. */
export function parseTemplate(text: string, file: string): ParseResult<Template> {
  const parsed = parseYaml(text, file);
  if (!parsed.ok) return parsed;
  const result = templateSchema.safeParse(parsed.data);
  if (!result.success) return { ok: false, issues: zodIssues(result.error, parsed.source, parsed.data) };
  return { ok: true, value: result.data, source: parsed.source };
}

export type { Issue };
