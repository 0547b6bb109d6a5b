// Writes lab/labfile/labfile.schema.json from the zod schema (the one source of truth), with
// the shipped templates (vm-templates/) as the `template` property's examples.
// test/unit/labfile/schema-file.test.ts fails when the committed file is stale.
import { writeFileSync } from 'node:fs';
import { labfileJsonSchema, SHIPPED_TEMPLATES } from '../lab/labfile/json-schema.js';
import { listTemplateNames } from '../lab/templates/load.js';

const shipped = listTemplateNames();
if (shipped.join(' ') !== SHIPPED_TEMPLATES.join(' ')) {
  console.error(
    `vm-templates/ holds ${shipped.join(', ')}; SHIPPED_TEMPLATES in lab/labfile/json-schema.ts lists ${SHIPPED_TEMPLATES.join(', ')}: make them agree`,
  );
  process.exit(1);
}
writeFileSync(new URL('../lab/labfile/labfile.schema.json', import.meta.url), labfileJsonSchema(shipped));
console.log('wrote lab/labfile/labfile.schema.json');
