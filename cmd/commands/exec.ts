import { labContext } from '../../lab/apply/context.js';
import { fanOut, fanOutSummary, prefixed } from '../../lab/apply/fan-out.js';
import { BadInputError } from '../../lab/errors.js';
import { ignoreEvents } from '../../lab/events.js';
import { loadLab } from '../../lab/spec/load.js';
import { durationFlag, labfilePath, parseFlags, splitAtDashes, UsageError } from '../args.js';
import { interruptible } from '../signals.js';

const HELP = `Usage: lab exec [-f Labfile.yaml] [--nodes a,b] [--timeout DURATION] [--json] -- CMD [ARG...]

Runs CMD on every running node of the lab at once (or the --nodes named), over the lab's
pinned SSH connections. CMD is a program and its arguments, not a shell line: use
sh -c '...' for pipes. Each node's output is printed when it is done, every line
prefixed by the node's name (| for stdout, ! for stderr), then a summary of exit codes.
Exit 0 when CMD exited 0 on every node, else 1, naming each node where it did not.

Options:
  --nodes a,b          only these nodes
  --timeout DURATION   how long CMD may run on a node (default 10m)
  --json               one JSON document: [{ node, code, stdout, stderr, error?, ms }]

Examples:
  lab exec -- hostname
  lab exec --nodes coreos1,coreos2 -- systemctl is-active etcd
  lab exec -- sh -c 'etcdctl endpoint health 2>&1 | tail -1'
`;

export async function run(argv: string[]): Promise<number> {
  const { own, command } = splitAtDashes(argv);
  const flags = parseFlags(
    own,
    { json: { type: 'boolean' }, nodes: { type: 'string' }, timeout: { type: 'string' } },
    HELP,
    false,
  );
  if (!flags) return 0;
  if (command.length === 0)
    throw new UsageError('which command? lab exec -- CMD [ARG...]', { hint: HELP.split('\n')[0] });
  const timeoutMs = durationFlag('timeout', flags.values.timeout, 600_000);
  const { lab } = loadLab(labfilePath(flags.values, { reads: true }));
  const names =
    typeof flags.values.nodes === 'string'
      ? [
          ...new Set(
            flags.values.nodes
              .split(',')
              .map((n) => n.trim())
              .filter(Boolean),
          ),
        ]
      : lab.nodes.map((n) => n.name);
  const unknown = names.filter((n) => !lab.nodes.some((s) => s.name === n));
  if (unknown.length || names.length === 0)
    throw new BadInputError(
      `--nodes ${String(flags.values.nodes)}: no node ${unknown.map((n) => `"${n}"`).join(', ')} in lab ${lab.name} (nodes: ${lab.nodes.map((n) => n.name).join(', ')})`,
    );
  const nodes = names.map((n) => lab.nodes.find((s) => s.name === n)!);
  const width = Math.max(...nodes.map((n) => n.name.length));
  const json = Boolean(flags.values.json);
  const stop = interruptible('stopping lab exec');
  try {
    const results = await fanOut(labContext(lab, ignoreEvents, stop.signal), nodes, command, {
      timeoutMs,
      onResult: (r) => {
        if (json) return;
        const out = prefixed(r, width);
        process.stdout.write(out.stdout);
        process.stderr.write(out.stderr);
        if (r.error) process.stderr.write(`${r.node.padEnd(width)} ! lab: ${r.error}\n`);
      },
    });
    const summary = fanOutSummary(results);
    if (json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
    process.stderr.write(`${summary.text}\n`);
    return summary.failed.length ? 1 : 0;
  } finally {
    stop.dispose();
  }
}
