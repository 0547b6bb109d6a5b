import { labContext, type LabContext } from '../../lab/apply/context.js';
import type { LabSpec } from '../../lab/plan/model.js';
import { parseDuration, withLabLock } from '../../lab/apply/locking.js';
import { up, type UpOptions, type UpResult } from '../../lab/apply/up.js';
import { loadLab } from '../../lab/spec/load.js';
import { labfilePath, parseFlags, UsageError } from '../args.js';
import { plainEventPrinter, printWarnings, table } from '../output.js';
import { interruptible } from '../signals.js';
import { unitsTable } from './units.js';

const HELP = `Usage: lab up [-f Labfile.yaml] [--json] [--no-wait] [--lock-timeout DURATION]

Creates the lab, or converges it to the Labfile: fetches or builds images into the
cache, makes a copy-on-write overlay, a seed and a libvirt domain per node (in
parallel), starts them, then waits until every node answers SSH (host key pinned)
and its services are healthy. A re-run on a healthy lab changes nothing.
etcd's members change one at a time: a new node joins as a learner, a node the
Labfile no longer names leaves etcd and is then removed (lab plan shows both).
In a terminal, progress is a live per-node view; otherwise (pipes, CI, --debug) it is
one timestamped line per node and step on stderr.
Exit 0 when all is healthy, 1 naming the node, step and cause otherwise, 75 when
another lab up, down or reset of this lab runs (it is named), 130 when interrupted
(SIGINT), 143 when terminated (SIGTERM). Ctrl-C or SIGTERM once stops cleanly (the
state is kept, the next up converges); twice, at once.

Options:
  --json                   print the result as JSON on stdout
  --no-wait                provision and start the nodes, then return without waiting
                           for SSH and services (lab status shows them come up; the
                           next lab up waits, and writes etcd's member list: a new
                           etcd member starts then)
  --lock-timeout DURATION  wait this long for another run of this lab (0, 30s, 10m; default 0)

Examples:
  lab up
  lab up -f Labfile.example.yaml --debug
`;

export async function run(argv: string[]): Promise<number> {
  const flags = parseFlags(
    argv,
    { json: { type: 'boolean' }, 'no-wait': { type: 'boolean' }, 'lock-timeout': { type: 'string' } },
    HELP,
    false,
  );
  if (!flags) return 0;
  return converge(flags, HELP, flags.values['no-wait'] ? { noWait: true } : {});
}

/** `lab up` and `lab reset`: converge the lab under its lock, print the outcome. */
export async function converge(
  flags: NonNullable<ReturnType<typeof parseFlags>>,
  help: string,
  opts: UpOptions,
): Promise<number> {
  const { lab } = loadLab(labfilePath(flags.values));
  for (const n of opts.reset ?? [])
    if (!lab.nodes.some((x) => x.name === n))
      throw new UsageError(
        `no node "${n}" in lab ${lab.name} (nodes: ${lab.nodes.map((x) => x.name).join(', ')})`,
      );
  return operate(lab, flags, help, (ctx) => up(ctx, opts));
}

/**
 * A lab operation that ends in a converged lab (up, reset, checkpoint restore): under the
 * lab's lock, Ctrl-C once stops after the running steps and twice at once, progress as a
 * live view in a terminal or plain lines, then the outcome (JSON with --json).
 */
export async function operate<R extends UpResult>(
  lab: LabSpec,
  flags: NonNullable<ReturnType<typeof parseFlags>>,
  help: string,
  act: (ctx: LabContext) => Promise<R>,
  more: (r: R) => string = () => '',
): Promise<number> {
  const lockTimeoutMs = lockTimeout(flags.values['lock-timeout'], help);
  printWarnings(lab);
  // First signal: stop starting steps, let running ones end, keep the state. Second: now.
  const stop = interruptible('stopping after the running steps');
  const debug = Boolean(flags.values.debug);
  // A live per-node view when a person watches (stderr is a terminal); plain timestamped
  // lines for pipes, CI logs and --debug. ink is loaded only for the live view.
  const live = process.stderr.isTTY && !debug && !inCi();
  const view = live
    ? (await import('../../lab/ui/up/UpView.js')).mountUpView(
        lab.nodes.map((n) => n.name),
        !process.env.NO_COLOR,
      )
    : undefined;
  const ctx = labContext(lab, view ? (e) => view.onEvent(e) : plainEventPrinter({ debug }), stop.signal);
  const reason = () => stop.reason();
  let result: R;
  try {
    result = await withLabLock(lab.name, { timeoutMs: lockTimeoutMs, signal: stop.signal }, () => act(ctx));
  } catch (err) {
    // A step the signal cancelled (virsh capabilities in preflight, the wait for a lock)
    // fails with "cancelled": the cause is the signal, and its exit code is 130 or 143.
    if (!stop.signal.aborted) throw err;
    process.stderr.write(`${reason().message}: ${(err as Error).message}\n`);
    return reason().exitCode;
  } finally {
    await view?.finish();
  }
  if (flags.values.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else process.stdout.write(summary(result) + more(result));
  if (stop.signal.aborted) return reason().exitCode;
  return result.ok ? 0 : 1;
}

export function lockTimeout(value: unknown, help: string): number {
  if (value === undefined) return 0;
  const ms = typeof value === 'string' ? parseDuration(value) : undefined;
  if (ms === undefined)
    throw new UsageError(
      `--lock-timeout ${JSON.stringify(value)}: expected a duration such as 0, 30s or 10m`,
      {
        hint: help.split('\n')[0],
      },
    );
  return ms;
}

function summary(r: UpResult): string {
  const rows = [['NODE', 'RESULT', 'ACTIONS', 'MACHINE-ID', 'ETCD', 'DOCKER']];
  for (const n of r.nodes) {
    rows.push([
      n.node,
      !n.ok ? `FAILED at ${n.failedStep}` : n.waited === false ? 'started' : 'healthy',
      n.actions.join(',') || 'none',
      n.health?.machineId?.slice(0, 12) ?? '-',
      n.health?.etcd ? n.health.etcd.state : '-',
      n.health?.docker ? `${n.health.docker.state} ${n.health.docker.version ?? ''}`.trim() : '-',
    ]);
  }
  let out = table(rows);
  for (const n of r.nodes.filter((x) => !x.ok)) out += `${n.node}: ${n.failedStep}: ${n.error}\n`;
  for (const l of r.left ?? [])
    out += l.ok
      ? `${l.node}: removed (not in the Labfile${l.member === 'removed' ? '; it left etcd first' : ''})\n`
      : `${l.node}: not removed (not in the Labfile): ${l.error}\n`;
  const c = r.cluster;
  if (c.etcdMembers !== undefined)
    out += `etcd: ${c.etcdMembers} members, leader ${c.etcdLeader ?? 'none'}, write/read across nodes ${c.replicated ? 'ok' : 'FAILED'}\n`;
  if (r.units) out += unitsTable(r.units.rows);
  for (const p of [...c.problems, ...(r.units?.problems ?? [])]) out += `problem: ${p}\n`;
  const waited = r.nodes.every((n) => n.waited !== false);
  const verdict = !r.ok
    ? 'lab is NOT healthy'
    : waited
      ? 'lab is healthy'
      : 'lab is started, not waited for (--no-wait)';
  out += `${verdict} (${(r.ms / 1000).toFixed(1)} s, accelerator ${r.accelerator === 'kvm' ? 'KVM' : 'TCG'}${r.changed ? '' : ', nothing changed'})\n`;
  return out;
}

/** CI as ink (is-in-ci) reads it: CI or CONTINUOUS_INTEGRATION set, and not 0 or false. */
function inCi(): boolean {
  return ['CI', 'CONTINUOUS_INTEGRATION'].some(
    (k) => k in process.env && process.env[k] !== '0' && process.env[k] !== 'false',
  );
}
