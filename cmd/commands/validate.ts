import { LabfileError, type Issue } from '../../lab/errors.js';
import type { LabSpec } from '../../lab/plan/model.js';
import { loadLab } from '../../lab/spec/load.js';
import { printWarnings } from '../output.js';
import { labfilePath, parseFlags } from '../args.js';

const HELP = `Usage: lab validate [-f Labfile.yaml] [--json]

Checks a Labfile without touching anything: unknown keys, duplicate names, IPs or
MACs, IPs outside the CIDR, bad sizes, unknown templates, unsafe file paths.
Exit 0 when valid; exit 2 with every problem as file:line:col: message.

Options:
  --json   one JSON document on stdout, valid or not (its schema: schemas/cli/validate.json)

Examples:
  lab validate -f Labfile.example.yaml
  lab validate --json | jq '.issues[]?.message'
`;

/** A problem as `--json` shows it: where, and what (line and column 0: the whole file). */
export interface IssueJson {
  file: string;
  line: number;
  column: number;
  message: string;
}

/** `lab validate --json`: the lab in short when the Labfile is valid, else every issue. */
export type ValidationJson =
  | {
      ok: true;
      file: string;
      lab: string;
      nodes: { name: string; ip: string; template: string }[];
      network: { mode: LabSpec['network']['mode']; bridge: string; cidr: string };
      warnings: IssueJson[];
    }
  | { ok: false; file: string; issues: IssueJson[] };

const issueJson = (i: Issue): IssueJson => ({
  file: i.file,
  line: i.line,
  column: i.col,
  message: i.message,
});

/** The `--json` document of a valid Labfile. Pure. */
export function validJson(file: string, lab: LabSpec): ValidationJson {
  return {
    ok: true,
    file,
    lab: lab.name,
    nodes: lab.nodes.map((n) => ({ name: n.name, ip: n.ip, template: n.template.name })),
    network: { mode: lab.network.mode, bridge: lab.network.bridge, cidr: lab.network.cidr },
    warnings: lab.warnings.map(issueJson),
  };
}

/** The `--json` document of a Labfile that does not validate. Pure. */
export function invalidJson(file: string, issues: readonly Issue[]): ValidationJson {
  return { ok: false, file, issues: issues.map(issueJson) };
}

export function run(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, { json: { type: 'boolean' } }, HELP, false);
  if (!flags) return Promise.resolve(0);
  const file = labfilePath(flags.values);
  if (flags.values.json) return Promise.resolve(printJson(file));
  const { lab } = loadLab(file);
  printWarnings(lab);
  process.stdout.write(
    `${file}: valid: lab ${lab.name}, ${lab.nodes.length} node(s), ${lab.network.mode} network ${lab.network.cidr}\n`,
  );
  return Promise.resolve(0);
}

/** Valid or not, one document on stdout; the exit code says which (0 or 2). */
function printJson(file: string): number {
  let doc: ValidationJson;
  try {
    doc = validJson(file, loadLab(file).lab);
  } catch (err) {
    // Only a Labfile's problems are data; anything else is an error as usual.
    if (!(err instanceof LabfileError)) throw err;
    doc = invalidJson(file, err.issues);
  }
  process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
  return doc.ok ? 0 : 2;
}
