import { readFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../../lab/runtime/package-root.js';
import { parseFlags } from '../args.js';

const HELP = `Usage: lab schema

Prints the Labfile's JSON Schema (draft 2020-12), for editors. Saved beside a Labfile
and named in its first line, it lets the YAML language server (VS Code, Neovim, ...)
complete keys and the shipped template names, and mark mistakes as you type:

  # yaml-language-server: $schema=./labfile.schema.json

lab validate still makes the checks a schema cannot: IPs in the network, duplicate
names, templates that exist and offer the services asked for.

Examples:
  lab schema > labfile.schema.json
  lab schema | jq '.properties.template.examples'
`;

/** The schema's place in the package, whether lab runs from source or from dist/. */
const SCHEMA = path.join('lab', 'labfile', 'labfile.schema.json');

export function run(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, {}, HELP, false);
  if (!flags) return Promise.resolve(0);
  process.stdout.write(readFileSync(schemaFile(), 'utf8'));
  return Promise.resolve(0);
}

/** The generated lab/labfile/labfile.schema.json (npm run schema) of this package. */
export function schemaFile(): string {
  return path.join(packageRoot(), SCHEMA);
}
