import { labContext } from '../../lab/apply/context.js';
import { status, type LabStatus } from '../../lab/apply/status.js';
import { ignoreEvents } from '../../lab/events.js';
import { loadLab } from '../../lab/load.js';
import { labfilePath, parseFlags } from '../args.js';
import { table } from '../output.js';

const HELP = `Usage: lab status [-f Labfile.yaml] [--json]

Every node: domain state, IP, machine-id, etcd role and health, docker, fleet.
Options:
  --json   one JSON document on stdout (a stable contract for scripts)
`;

export async function run(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, { json: { type: 'boolean' } }, HELP, false);
  if (!flags) return 0;
  const { lab } = loadLab(labfilePath(flags.values.file));
  const s = await status(labContext(lab, ignoreEvents));
  if (flags.values.json) process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
  else process.stdout.write(render(s));
  return 0;
}

function render(s: LabStatus): string {
  const rows = [['NODE', 'STATE', 'IP', 'MACHINE-ID', 'ETCD', 'DOCKER', 'FLEET']];
  for (const n of s.nodes) {
    rows.push([
      n.name,
      n.state,
      n.ip,
      n.machineId?.slice(0, 12) ?? '-',
      n.etcd ? `${n.etcd.state}${n.etcd.raftTerm ? ` (term ${n.etcd.raftTerm})` : ''}` : '-',
      n.docker ? `${n.docker.state}${n.docker.version ? ` ${n.docker.version}` : ''}` : '-',
      n.fleet === null ? '-' : typeof n.fleet === 'string' ? n.fleet : 'present',
    ]);
  }
  let out = `lab ${s.lab} on ${s.uri}\n` + table(rows);
  const c = s.cluster;
  if (c.etcdMembers !== null)
    out += `etcd: ${c.quorum ? 'quorum' : 'NO QUORUM'}, ${c.etcdMembers} members, leader ${c.etcdLeader ?? 'none'}\n`;
  if (c.duplicateMachineIds.length)
    out += `warning: duplicate machine-ids: ${c.duplicateMachineIds.join(', ')}\n`;
  for (const n of s.nodes.filter((x) => x.lastError)) out += `${n.name}: ${n.lastError}\n`;
  return out;
}
