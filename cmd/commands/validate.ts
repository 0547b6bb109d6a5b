import { loadLab } from '../../lab/spec/load.js';
import { printWarnings } from '../output.js';
import { labfilePath, parseFlags } from '../args.js';

const HELP = `Usage: lab validate [-f Labfile.yaml]

Checks a Labfile without touching anything: unknown keys, duplicate names, IPs or
MACs, IPs outside the CIDR, bad sizes, unknown templates, unsafe file paths.
Exit 0 when valid; exit 2 with every problem as file:line:col: message.

Example:
  lab validate -f Labfile.example.yaml
`;

export function run(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, {}, HELP, false);
  if (!flags) return Promise.resolve(0);
  const file = labfilePath(flags.values);
  const { lab } = loadLab(file);
  printWarnings(lab);
  process.stdout.write(
    `${file}: valid: lab ${lab.name}, ${lab.nodes.length} node(s), ${lab.network.mode} network ${lab.network.cidr}\n`,
  );
  return Promise.resolve(0);
}
