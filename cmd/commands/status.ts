import { labContext } from '../../lab/apply/context.js';
import type { StatusMonitor } from '../../lab/apply/monitor.js';
import { status, type LabStatus } from '../../lab/apply/status.js';
import { ignoreEvents } from '../../lab/events.js';
import { sleep } from '../../lab/runtime/clock.js';
import { loadLab } from '../../lab/spec/load.js';
import { labfilePath, parseFlags, UsageError } from '../args.js';
import { table } from '../output.js';

const HELP = `Usage: lab status [-f Labfile.yaml] [--json] [--watch] [--interval SECONDS] [--table]

Every node: domain state, IP, machine-id, etcd role and term, docker, fleet, load and
memory, and a cluster verdict (etcd quorum, members, leader, duplicate machine-ids).

In a terminal it is a live screen, refreshed every --interval seconds over one kept-open
SSH connection per node:  j/k or arrows select a node,  enter  details (journal, failed
units, addresses, disk),  s  a shell on it,  r  refresh now,  q  quit.
When stdout is not a terminal, or with --json, it prints one JSON document instead:
the domains' states and links as libvirt has them, and what each running node answered
over its kept SSH connection. A node lab has no connection to and that does not give
one within 3 s (it is booting, or cut off) is reported with its lastError, so one
look never waits on it for long.

Options:
  --json            one JSON document on stdout (a stable contract for scripts)
  --watch           with --json: a JSON document per refresh, one per line, until interrupted
  --interval SECS   refresh period of the live screen and of --watch (default 3)
  --table           one plain text table, then exit

Examples:
  lab status
  lab status --json | jq '.cluster.etcdLeader'
  lab status --json --watch --interval 5
`;

export async function run(argv: string[]): Promise<number> {
  const flags = parseFlags(
    argv,
    {
      json: { type: 'boolean' },
      watch: { type: 'boolean' },
      table: { type: 'boolean' },
      interval: { type: 'string' },
    },
    HELP,
    false,
  );
  if (!flags) return 0;
  const intervalS = Number(flags.values.interval ?? 3);
  if (!Number.isFinite(intervalS) || intervalS < 0.5 || intervalS > 3600)
    throw new UsageError(`--interval ${flags.values.interval}: expected seconds between 0.5 and 3600`);
  const { lab } = loadLab(labfilePath(flags.values, { reads: true }));
  const ctx = labContext(lab, ignoreEvents);
  const intervalMs = intervalS * 1000;

  // The monitor (ssh2, the XML parser) loads only for the watching views: a one-shot look
  // goes through the connection agent and starts faster without them.
  if (flags.values.watch) {
    const { StatusMonitor } = await import('../../lab/apply/monitor.js');
    return watch(new StatusMonitor(ctx, { intervalMs }));
  }
  const live = process.stdout.isTTY && process.stdin.isTTY && !flags.values.json && !flags.values.table;
  if (live) {
    // ink draws nothing until the end when it thinks it runs under CI (CI set, even to ""):
    // this is a terminal someone (or a test's pty) looks at, so it gets the live screen.
    delete process.env.CI;
    delete process.env.CONTINUOUS_INTEGRATION;
    const [{ runStatusScreen }, { StatusMonitor }] = await Promise.all([
      import('../status-screen.js'),
      import('../../lab/apply/monitor.js'),
    ]);
    return runStatusScreen(new StatusMonitor(ctx, { intervalMs }));
  }
  const s = await status(ctx);
  if (flags.values.table) process.stdout.write(render(s));
  else process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
  return 0;
}

/** JSON lines: a document after each complete round, until SIGINT/SIGTERM. */
async function watch(monitor: StatusMonitor): Promise<number> {
  const { labStatusOf } = await import('../../lab/apply/monitor.js');
  let stop = false;
  const onSignal = () => {
    stop = true;
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  await monitor.start();
  try {
    while (!stop) {
      const t0 = Date.now();
      await monitor.round();
      process.stdout.write(
        `${JSON.stringify({ time: new Date().toISOString(), ...labStatusOf(monitor.snapshot()) })}\n`,
      );
      const wait = monitor.intervalMs - (Date.now() - t0);
      for (let left = wait; left > 0 && !stop; left -= 200) await sleep(Math.min(200, left));
    }
  } finally {
    monitor.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return 0;
}

function render(s: LabStatus): string {
  const rows = [['NODE', 'STATE', 'IP', 'MACHINE-ID', 'ETCD', 'DOCKER', 'FLEET']];
  for (const n of s.nodes) {
    rows.push([
      n.name,
      n.link === 'down' ? `${n.state}, link down` : n.state,
      n.ip,
      n.machineId?.slice(0, 12) ?? '-',
      n.etcd ? `${n.etcd.state}${n.etcd.raftTerm ? ` (term ${n.etcd.raftTerm})` : ''}` : '-',
      n.docker ? `${n.docker.state}${n.docker.version ? ` ${n.docker.version}` : ''}` : '-',
      n.fleet === null ? '-' : typeof n.fleet === 'string' ? n.fleet : `${n.fleet.machines.length} machines`,
    ]);
  }
  let out = `lab ${s.lab} on ${s.uri}\n` + table(rows);
  const c = s.cluster;
  if (c.etcdMembers !== null)
    out += `etcd: ${c.quorum ? 'quorum' : 'NO QUORUM'}, ${c.etcdMembers} members, leader ${c.etcdLeader ?? 'none'}\n`;
  if (c.duplicateMachineIds.length)
    out += `warning: nodes share a machine-id (cloned image?): ${c.duplicateMachineIds.join(', ')}\n`;
  for (const n of s.nodes.filter((x) => x.lastError)) out += `${n.name}: ${n.lastError}\n`;
  if (s.restored)
    out += `restored from checkpoint ${s.restored.checkpoint} at ${s.restored.at}${s.restored.nodes ? ` (${s.restored.nodes.join(', ')})` : ''}\n`;
  return out;
}
