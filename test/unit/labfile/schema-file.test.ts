import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { labfileJsonSchema } from '../../../lab/labfile/json-schema.js';

const root = path.join(import.meta.dirname, '../../..');
const schemaFile = path.join(root, 'lab/labfile/labfile.schema.json');

describe('the Labfile JSON Schema (for editors)', () => {
  it('is committed up to date with the zod schema (npx tsx scripts/gen-schema.ts)', () => {
    expect(readFileSync(schemaFile, 'utf8')).toBe(labfileJsonSchema());
  });

  it('is named by the example Labfile and accepts it; rejects an unknown key', () => {
    const text = readFileSync(path.join(root, 'Labfile.example.yaml'), 'utf8');
    expect(text.split('\n')[0]).toBe('# yaml-language-server: $schema=./lab/labfile/labfile.schema.json');
    const validate = new Ajv2020({ strict: false }).compile(
      JSON.parse(readFileSync(schemaFile, 'utf8')) as object,
    );
    expect(validate(parse(text))).toBe(true);
    expect(validate({ ...(parse(text) as object), colour: 'red' })).toBe(false);
  });
});
