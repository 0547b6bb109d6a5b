import { z } from 'zod';
import { labfileSchema } from './schema.js';

/** The Labfile's JSON Schema (for editors), generated from the validator itself. Pure. */
export function labfileJsonSchema(): string {
  const schema = z.toJSONSchema(labfileSchema, { io: 'input', target: 'draft-2020-12' });
  return `${JSON.stringify({ ...schema, $id: 'https://lab.invalid/labfile.schema.json', title: 'Labfile' }, null, 2)}\n`;
}
