// The JSON Schemas of lab's --json outputs (schemas/cli/NAME.json), for any test that holds
// a real output: unit tests build them through the commands' own code, the e2e suite reads
// them from the CLI. Strict ajv: a schema with an unknown keyword or a loose type does not
// compile, so a typo cannot make a schema accept everything.
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

/** Where the schemas are: one per read command, `image list` as image-list.json. */
export const CLI_SCHEMAS = path.join(import.meta.dirname, '../../schemas/cli');

const ajv = new Ajv2020({ strict: true, allErrors: true });
// ajv-formats is CommonJS: its default export is the module; the plugin is its `default`.
addFormats.default(ajv);
const compiled = new Map<string, ValidateFunction>();

/** The names of every schema in schemas/cli (`status`, `image-list`, ...), sorted. */
export function cliSchemaNames(): string[] {
  return readdirSync(CLI_SCHEMAS)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}

/** schemas/cli/NAME.json compiled (once); throws when the file is missing or not strict. */
export function cliSchema(name: string): ValidateFunction {
  let validate = compiled.get(name);
  if (!validate) {
    const schema = JSON.parse(readFileSync(path.join(CLI_SCHEMAS, `${name}.json`), 'utf8')) as object;
    validate = ajv.compile(schema);
    compiled.set(name, validate);
  }
  return validate;
}

/** Throws, saying where and why, unless `value` keeps to schemas/cli/NAME.json. */
export function assertMatchesSchema(name: string, value: unknown): void {
  const validate = cliSchema(name);
  if (validate(value)) return;
  throw new Error(`not as schemas/cli/${name}.json says:\n${describeErrors(validate.errors ?? [])}`);
}

/** One line per error (the first 10): where in the document, and what is wrong there. */
function describeErrors(errors: readonly ErrorObject[]): string {
  const lines = errors.slice(0, 10).map((e) => {
    const extra = e.keyword === 'additionalProperties' ? `: ${String(e.params.additionalProperty)}` : '';
    return `  ${e.instancePath || '(the document)'} ${e.message ?? e.keyword}${extra}`;
  });
  if (errors.length > 10) lines.push(`  ... and ${errors.length - 10} more`);
  return lines.join('\n');
}
