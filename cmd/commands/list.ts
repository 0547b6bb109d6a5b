import { listLabs } from '../../lab/apply/list.js';
import { parseFlags } from '../args.js';
import { table } from '../output.js';

const HELP = `Usage: lab list [--json] [--no-probe]

Every lab you have on this host: from the state folder, and from libvirt's domains that
carry a lab's metadata (a lab whose state folder is gone shows as an orphan; lab down
--lab NAME removes it). Per lab: its nodes, how many run (libvirt) and how many are
healthy (a probe over the pinned connections), its network, when it was made, the disk
its overlays take, and its Labfile.

Options:
  --json       one JSON document: [{ lab, uri, labfile, network, nodes, running, healthy,
               created, diskBytes, orphan, problems }]
  --no-probe   libvirt and the state folder only: no SSH (healthy is null)

Examples:
  lab list
  lab list --json --no-probe
`;

export async function run(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, { json: { type: 'boolean' }, 'no-probe': { type: 'boolean' } }, HELP, false);
  if (!flags) return 0;
  const labs = await listLabs({ probe: !flags.values['no-probe'] });
  if (flags.values.json) {
    process.stdout.write(`${JSON.stringify(labs, null, 2)}\n`);
    return 0;
  }
  if (labs.length === 0) {
    process.stdout.write('no labs on this host (lab up -f Labfile.yaml makes one)\n');
    return 0;
  }
  process.stdout.write(
    table([
      ['LAB', 'NODES', 'RUNNING', 'HEALTHY', 'NETWORK', 'CREATED', 'DISK', 'LABFILE'],
      ...labs.map((l) => [
        l.orphan ? `${l.lab} (orphan)` : l.lab,
        String(l.nodes),
        String(l.running),
        l.healthy === null ? '-' : String(l.healthy),
        l.network ?? '-',
        l.created ? l.created.slice(0, 16).replace('T', ' ') : '-',
        `${(l.diskBytes / 2 ** 20).toFixed(0)} MiB`,
        l.labfile ?? '-',
      ]),
    ]),
  );
  for (const l of labs) for (const p of l.problems) process.stderr.write(`${l.lab}: ${p}\n`);
  const orphans = labs.filter((l) => l.orphan);
  if (orphans.length)
    process.stderr.write(
      `an orphan has domains but no state here: lab down --lab ${orphans[0]!.lab} removes it\n`,
    );
  return 0;
}
