// Writes lab/labfile/labfile.schema.json from the zod schema (the one source of truth).
// test/unit/labfile/schema-file.test.ts fails when the committed file is stale.
import { writeFileSync } from 'node:fs';
import { labfileJsonSchema } from '../lab/labfile/json-schema.js';

writeFileSync(new URL('../lab/labfile/labfile.schema.json', import.meta.url), labfileJsonSchema());
console.log('wrote lab/labfile/labfile.schema.json');
