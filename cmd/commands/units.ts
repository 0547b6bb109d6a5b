import { labContext } from '../../lab/apply/context.js';
import { listUnits, type UnitRow } from '../../lab/apply/units.js';
import { ignoreEvents } from '../../lab/events.js';
import { loadLab } from '../../lab/spec/load.js';
import { labfilePath, parseFlags } from '../args.js';
import { table } from '../output.js';

const HELP = `Usage: lab units [-f Labfile.yaml] [--json]

The lab's units (the Labfile's units:) and where they run, like fleetctl list-units:
UNIT, LOAD, ACTIVE, SUB, DESC and MACHINE (machine-id.../IP). lab up places them:
[X-Fleet] X-Conflicts spreads them over machines, X-ConditionMachineOf puts them beside
another unit, and the units of a node that went down move to the others.

Examples:
  lab units
  lab units --json | jq -r '.[] | select(.active != "active") | .unit'
`;

export async function run(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, { json: { type: 'boolean' } }, HELP, false);
  if (!flags) return 0;
  const { lab } = loadLab(labfilePath(flags.values, { reads: true }));
  const { rows, unreachable } = await listUnits(labContext(lab, ignoreEvents));
  if (flags.values.json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
  else process.stdout.write(unitsTable(rows));
  for (const n of unreachable) process.stderr.write(`lab: ${n} did not answer: its units are not listed\n`);
  return unreachable.length ? 1 : 0;
}

/** fleetctl's list-units layout; MACHINE as fleetctl shortens it: `960a9f62.../192.168.2.52`. */
export function unitsTable(rows: readonly UnitRow[]): string {
  return table([
    ['UNIT', 'LOAD', 'ACTIVE', 'SUB', 'DESC', 'MACHINE'],
    ...rows.map((r) => [
      r.unit,
      r.load,
      r.active,
      r.sub,
      r.description || '-',
      r.node ? `${r.machineId!.slice(0, 8)}.../${r.ip!}` : '-',
    ]),
  ]);
}
