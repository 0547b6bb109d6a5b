import type { Issue } from '../errors.js';
import type { z } from 'zod';
import { parseYaml, type ParseResult, type PathKey } from '../labfile/parse.js';
import { zodIssues } from '../labfile/zod-issues.js';
import { templateSchema, type Dialect, type Template } from './schema.js';

/** What each dialect's reader can read its config from. */
const DELIVERIES: Record<Dialect, Template['provisioning']['delivery'][]> = {
  'cloud-init': ['nocloud'],
  // coreos-cloudinit reads a config drive (the OEM partition is the image's own business).
  'coreos-cloudinit': ['config-drive'],
  ignition: ['fwcfg'],
};

/** A template's keys by section, for "did you mean" on a misspelt one. */
const KEYS: Record<string, readonly string[]> = {
  '': Object.keys(templateSchema.shape),
  image: [
    ...Object.keys(templateSchema.shape.image.options[0].shape),
    ...Object.keys(templateSchema.shape.image.options[1].shape),
  ],
  boot: [
    ...Object.keys(templateSchema.shape.boot.options[0].shape),
    ...Object.keys(templateSchema.shape.boot.options[1].shape),
  ],
  provisioning: Object.keys(templateSchema.shape.provisioning.shape),
  ssh: Object.keys(templateSchema.shape.ssh.shape),
};

/** Template YAML text -> Template, or located issues. Pure. */
export function parseTemplate(text: string, file: string): ParseResult<Template> {
  const parsed = parseYaml(text, file, 'a template');
  if (!parsed.ok) return parsed;
  if (parsed.data === null || typeof parsed.data !== 'object' || Array.isArray(parsed.data)) {
    const issue = parsed.source.issueAt(
      [],
      'expected a mapping with name, image, boot, provisioning and ssh',
    );
    return { ok: false, issues: [{ ...issue, line: 1, col: 1, source: text.split(/\r?\n/)[0] ?? '' }] };
  }
  const result = templateSchema.safeParse(parsed.data);
  if (!result.success) {
    // image and boot are each one of two forms: report against the one the file evidently means.
    const schemaFor = (at: PathKey[]): z.ZodType | undefined => {
      if (at.length !== 1) return undefined;
      const value: unknown = (parsed.data as Record<string, unknown>)[String(at[0])];
      const has = (key: string) => value !== null && typeof value === 'object' && key in value;
      if (at[0] === 'image') return templateSchema.shape.image.options[has('build') ? 0 : 1];
      if (at[0] === 'boot') return templateSchema.shape.boot.options[has('firmware') ? 1 : 0];
      return undefined;
    };
    return {
      ok: false,
      issues: zodIssues(result.error, parsed.source, parsed.data, { schemaFor, keys: KEYS }),
    };
  }
  const p = result.data.provisioning;
  const allowed = DELIVERIES[p.dialect];
  if (!allowed.includes(p.delivery)) {
    const issue = parsed.source.issueAt(
      ['provisioning', 'delivery'],
      `the ${p.dialect} dialect is delivered by ${allowed.join(' or ')}, not ${p.delivery}`,
    );
    return { ok: false, issues: [issue] };
  }
  return { ok: true, value: result.data, source: parsed.source };
}

export type { Issue };
