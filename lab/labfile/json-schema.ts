import { z } from 'zod';
import { labfileSchema } from './schema.js';

/**
 * The templates shipped in vm-templates/, offered to editors as examples. Kept here, not
 * read from the folder: this module is pure. scripts/gen-schema.ts refuses to write the
 * schema while the list and the folder differ.
 */
export const SHIPPED_TEMPLATES: readonly string[] = [
  'coreos-alpha',
  'debian-12-ignition',
  'debian-12-lab',
  'fedora-coreos-stable',
  'flatcar-alpha',
  'flatcar-beta',
  'flatcar-stable',
  'flatcar-stable-cloudconfig',
];

type JsonObject = Record<string, unknown>;

/** The Labfile's JSON Schema (for editors), generated from the validator itself. Pure. */
export function labfileJsonSchema(templates: readonly string[] = SHIPPED_TEMPLATES): string {
  const schema = z.toJSONSchema(labfileSchema, { io: 'input', target: 'draft-2020-12' }) as JsonObject;
  for (const template of templateProperties(schema)) offerTemplates(template, templates);
  return `${JSON.stringify({ ...schema, $id: 'https://lab.invalid/labfile.schema.json', title: 'Labfile' }, null, 2)}\n`;
}

/** Every `template` property: the Labfile's default, a node's, a node group's. */
function templateProperties(schema: JsonObject): JsonObject[] {
  const props = (o: unknown) => (o as { properties?: Record<string, JsonObject> } | undefined)?.properties;
  const top = props(schema);
  const items = (top?.nodes as { items?: { anyOf?: unknown[] } } | undefined)?.items;
  const found = [top?.template, ...(items?.anyOf ?? [items]).map((n) => props(n)?.template)];
  return found.filter((t): t is JsonObject => t !== undefined);
}

/**
 * Shipped names as `examples` (editors complete them), not an `enum`: a template may also be
 * a local .yaml beside the Labfile, which an enum would refuse.
 */
function offerTemplates(property: JsonObject, templates: readonly string[]): void {
  const what =
    typeof property.description === 'string'
      ? property.description
      : 'Guest template: a name in vm-templates/ or a path to a .yaml';
  property.description = `${what}; shipped: ${templates.join(', ')}`;
  property.examples = [...templates];
}
