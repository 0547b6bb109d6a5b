import { readFileSync } from 'node:fs';
import { LabfileError, type Issue } from '../../lab/errors.js';
import { parseLabfileShape, type PathKey } from '../../lab/labfile/parse.js';
import type { LabSpec } from '../../lab/plan/model.js';
import { expandNodes } from '../../lab/plan/node-groups.js';
import { ignitionValidate } from '../../lab/providers/ignition-validate.js';
import { ignitionConfigToCheck } from '../../lab/render/ignition.js';
import { loadLab, type LoadedLab } from '../../lab/spec/load.js';
import { printWarnings } from '../output.js';
import { labfilePath, parseFlags } from '../args.js';

const HELP = `Usage: lab validate [-f Labfile.yaml] [--json]

Checks a Labfile without touching anything: unknown keys, duplicate names, IPs or
MACs, IPs outside the CIDR, bad sizes, unknown templates, unsafe file paths.
A node provisioned by Ignition has its rendered config checked by upstream's
ignition-validate too (spec 3.0-3.3; Debian: apt install ignition), its findings
shown at the Labfile line they come from.
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

export async function run(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, { json: { type: 'boolean' } }, HELP, false);
  if (!flags) return 0;
  const file = labfilePath(flags.values);
  if (flags.values.json) return printJson(file);
  const loaded = loadLab(file);
  await checkIgnition(loaded);
  const { lab } = loaded;
  printWarnings(lab);
  process.stdout.write(
    `${file}: valid: lab ${lab.name}, ${lab.nodes.length} node(s), ${lab.network.mode} network ${lab.network.cidr}\n`,
  );
  return 0;
}

/** Valid or not, one document on stdout; the exit code says which (0 or 2). */
async function printJson(file: string): Promise<number> {
  let doc: ValidationJson;
  try {
    const loaded = loadLab(file);
    await checkIgnition(loaded);
    doc = validJson(file, loaded.lab);
  } catch (err) {
    // Only a Labfile's problems are data; anything else is an error as usual.
    if (!(err instanceof LabfileError)) throw err;
    doc = invalidJson(file, err.issues);
  }
  process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
  return doc.ok ? 0 : 2;
}

/**
 * Runs ignition-validate on every Ignition node's rendered config it can read. An error
 * is an issue at the Labfile file it comes from (storage.files past lab's own), else at
 * the node; a warning joins the lab's warnings. Throws LabfileError on any error.
 */
async function checkIgnition(loaded: LoadedLab): Promise<void> {
  const nodes = loaded.lab.nodes.filter((n) => n.template.provisioning.dialect === 'ignition');
  if (nodes.length === 0) return;
  const results = await Promise.all(
    nodes.map(async (node) => {
      const config = ignitionConfigToCheck(loaded.lab, node);
      // The Labfile's files come last in storage.files, after lab's own.
      const files = (JSON.parse(config) as { storage: { files: unknown[] } }).storage.files.length;
      return { node, own: files - node.files.length, findings: await ignitionValidate(config) };
    }),
  );
  if (results.every((r) => r.findings === undefined)) return;
  const shape = parseLabfileShape(readFileSync(loaded.file, 'utf8'), loaded.file);
  if (!shape.ok) return;
  const at = new Map(expandNodes(shape.value).map((n) => [n.name, n.at] as const));
  const issues: Issue[] = [];
  for (const { node, own, findings } of results) {
    const nodeAt: PathKey[] = at.get(node.name) ?? ['nodes'];
    for (const f of findings ?? []) {
      let where: PathKey[] = nodeAt;
      const k = f.at[0] === 'storage' && f.at[1] === 'files' ? Number(f.at[2]) - own : -1;
      if (k >= 0 && k < node.files.length) {
        const field = f.at[3] === 'contents' ? 'content' : f.at[3];
        where = [
          ...nodeAt,
          'files',
          k,
          ...(field && ['path', 'mode', 'content', 'owner'].includes(field) ? [field] : []),
        ];
      }
      const message = `node ${node.name}: ignition-validate: ${f.message}${k >= 0 ? '' : ` (at $.${f.at.join('.')})`}`;
      const issue = shape.source.issueAt(where, message);
      if (f.level === 'error') issues.push(issue);
      else loaded.lab.warnings.push(issue);
    }
  }
  if (issues.length > 0) throw new LabfileError(issues);
}
