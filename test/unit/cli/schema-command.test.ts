// `lab schema` (issue 19): the generated Labfile JSON Schema, read from the package wherever
// lab runs, with the shipped templates offered to editors as examples (not an enum: a local
// template beside the Labfile stays valid).
import { Ajv2020 } from 'ajv/dist/2020.js';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { labfileJsonSchema, SHIPPED_TEMPLATES } from '../../../lab/labfile/json-schema.js';
import { listTemplateNames } from '../../../lab/templates/load.js';
import { cli, example, helpExamples, installed, root, tmp, withLab } from './lab-cli.js';

const schemaFile = path.join(root, 'lab/labfile/labfile.schema.json');
const hasJq = await installed('jq');

interface TemplateProperty {
  examples?: string[];
  enum?: unknown;
  description?: string;
}
interface Schema {
  properties: {
    template: TemplateProperty;
    nodes: { items: { anyOf: { properties: { template: TemplateProperty } }[] } };
  };
}

describe('lab schema', { timeout: 60_000 }, () => {
  it('prints the committed schema, from any folder', async () => {
    const r = await cli(['schema'], { cwd: tmp('schema-cwd') });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe(readFileSync(schemaFile, 'utf8'));
  });

  it('offers the templates of vm-templates/ as examples for the Labfile, its nodes and node groups', () => {
    expect(SHIPPED_TEMPLATES).toEqual(listTemplateNames());
    const schema = JSON.parse(readFileSync(schemaFile, 'utf8')) as Schema;
    const props = [
      schema.properties.template,
      ...schema.properties.nodes.items.anyOf.map((n) => n.properties.template),
    ];
    expect(props).toHaveLength(3);
    for (const p of props) {
      expect(p.examples).toEqual(listTemplateNames());
      expect(p.enum).toBeUndefined();
      expect(p.description).toContain(`shipped: ${listTemplateNames().join(', ')}`);
    }
    expect(readFileSync(schemaFile, 'utf8')).toBe(labfileJsonSchema(listTemplateNames()));
  });

  it('still accepts a Labfile naming a local template, and still refuses an unknown key', () => {
    const validate = new Ajv2020({ strict: false }).compile(
      JSON.parse(readFileSync(schemaFile, 'utf8')) as object,
    );
    const labfile = parse(readFileSync(example, 'utf8')) as Record<string, unknown>;
    expect(validate({ ...labfile, template: './my-template.yaml' })).toBe(true);
    expect(validate({ ...labfile, colour: 'red' })).toBe(false);
  });

  it('npm run schema writes what the schema test expects (the generator passes the folder)', () => {
    const written = labfileJsonSchema(listTemplateNames());
    expect(written).toBe(labfileJsonSchema());
    const other = labfileJsonSchema(['only-this']);
    expect((JSON.parse(other) as Schema).properties.template.examples).toEqual(['only-this']);
  });

  it("runs its help's examples as written", async () => {
    const help = (await cli(['schema', '--help'])).stdout;
    expect(help).toMatch(/^Usage: lab schema$/m);
    const examples = helpExamples(help);
    expect(examples.length).toBeGreaterThanOrEqual(2);
    const dir = tmp('schema-examples');
    writeFileSync(path.join(dir, 'README'), 'a folder of its own\n');
    for (const line of examples) {
      if (line.includes('| jq') && !hasJq) {
        console.warn(`jq is not installed: not run: ${line}`);
        continue;
      }
      const r = await withLab('bash', ['-o', 'pipefail', '-c', line], { cwd: dir });
      expect(r.exitCode, `${line}\n${r.stderr}`).toBe(0);
      expect(r.stderr).toBe('');
      if (line.includes('| jq')) expect(JSON.parse(r.stdout)).toEqual(listTemplateNames());
    }
    expect(readFileSync(path.join(dir, 'labfile.schema.json'), 'utf8')).toBe(
      readFileSync(schemaFile, 'utf8'),
    );
  });
});
