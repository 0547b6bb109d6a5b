import { labContext } from '../../lab/apply/context.js';
import { status } from '../../lab/apply/status.js';
import { ignoreEvents } from '../../lab/events.js';
import { machinesJson } from '../../lab/plan/plan-json.js';
import { loadLab } from '../../lab/spec/load.js';
import { labfilePath, parseFlags } from '../args.js';
import { table } from '../output.js';

const HELP = `Usage: lab machines [-f Labfile.yaml] [--json] [--full]

The lab's machines as fleetctl list-machines shows them: each running node's machine-id
(read in the guest, over the pinned SSH connection), its IP, and its metadata
(lab=LAB,node=NODE, what fleet's units can select with MachineMetadata). A node that
is not running, or does not answer, is left out and named on stderr; exit 1 then.

Options:
  --json   one JSON document: [{ "machine", "ip", "metadata", "node" }]
  --full   the whole machine-id, not its first 8 digits

Examples:
  lab machines
  lab machines --json | jq -r '.[].machine'
`;

export async function run(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, { json: { type: 'boolean' }, full: { type: 'boolean' } }, HELP, false);
  if (!flags) return 0;
  const { lab } = loadLab(labfilePath(flags.values, { reads: true }));
  // It is asked for the ids: a node that is slow to answer is waited for, as up waits.
  const s = await status(labContext(lab, ignoreEvents), { probeTimeoutMs: 15_000 });
  const machines = machinesJson(lab.name, s.nodes);
  const missing = s.nodes.filter((n) => !n.machineId);
  for (const n of missing)
    process.stderr.write(`${n.name}: no machine-id (${n.state}${n.lastError ? `: ${n.lastError}` : ''})\n`);
  if (flags.values.json) process.stdout.write(`${JSON.stringify(machines, null, 2)}\n`);
  else
    process.stdout.write(
      table([
        ['MACHINE', 'IP', 'METADATA'],
        ...machines.map((m) => [
          flags.values.full ? m.machine : `${m.machine.slice(0, 8)}...`,
          m.ip,
          m.metadata,
        ]),
      ]),
    );
  return missing.length > 0 ? 1 : 0;
}
