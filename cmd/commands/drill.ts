import { labContext } from '../../lab/apply/context.js';
import { drillTargets, runDrill, type Drill, type DrillOutcome } from '../../lab/apply/drills.js';
import { withLabLock } from '../../lab/apply/locking.js';
import { describeError, LabError } from '../../lab/errors.js';
import { ignoreEvents } from '../../lab/events.js';
import { loadLab } from '../../lab/spec/load.js';
import { durationFlag, labfilePath, parseFlags, UsageError } from '../args.js';
import { interruptible } from '../signals.js';
import { lockTimeout } from './up.js';

export type DrillCommand = 'stop' | 'start' | 'kill' | 'pause' | 'resume' | 'link';

const COMMON_HELP = `  --json                  one JSON document: [{ node, domain, before, after, did, ... }]
  --lock-timeout DURATION  wait this long for another run of this lab (default 0)`;

const UNDONE = `Seen by lab status at its next look (libvirt's state, not an SSH timeout); lab up
undoes it.`;

const HELPS: Record<DrillCommand, string> = {
  stop: `Usage: lab stop NODE... [-f Labfile.yaml] [--timeout DURATION] [--json]

A failure drill: shuts NODE down as its power button would (ACPI): the guest stops its
services and powers off. One that has not powered off by the deadline is powered off.
${UNDONE}

Options:
  --timeout DURATION      how long the guest has to shut down (default 90s)
${COMMON_HELP}

Examples:
  lab stop coreos2
  lab stop coreos2 --timeout 30s
`,
  start: `Usage: lab start NODE... [-f Labfile.yaml] [--json]

Starts a stopped or killed NODE as it is defined, and returns while it boots: lab status
shows when it is healthy; lab up starts it and waits for that.

Options:
${COMMON_HELP}

Examples:
  lab start coreos2
`,
  kill: `Usage: lab kill NODE... [-f Labfile.yaml] [--json]

A failure drill: powers NODE off at once, as pulling its plug would (virsh destroy). Its
disk is kept. ${UNDONE.replace('\n', ' ')}

Options:
${COMMON_HELP}

Examples:
  lab kill coreos1
`,
  pause: `Usage: lab pause NODE... [-f Labfile.yaml] [--json]

A failure drill: freezes NODE (its vCPUs stop; QEMU keeps its memory). To its peers it is
a node that stopped answering. lab resume, or lab up, lets it run on where it stopped,
its clock set to the host's. ${UNDONE.split('\n')[0]}

Options:
${COMMON_HELP}

Examples:
  lab pause coreos3
`,
  resume: `Usage: lab resume NODE... [-f Labfile.yaml] [--json]

Lets a paused NODE run on, and sets its clock to the host's through the guest agent
(it stood still while the node was paused).

Options:
${COMMON_HELP}

Examples:
  lab resume coreos3
`,
  link: `Usage: lab link NODE... down|up [-f Labfile.yaml] [--json]

A failure drill: takes NODE's network link down (the cable pulled, through libvirt), or
up again. The node runs on, cut off: its peers see a partition. ${UNDONE.split('\n')[0]}
lab up sets a link that is down up again.

Options:
${COMMON_HELP}

Examples:
  lab link coreos1 down
  lab link coreos1 up
`,
};

export function drillCommand(kind: DrillCommand): { run: (argv: string[]) => Promise<number> } {
  return { run: (argv) => runDrillCommand(kind, argv) };
}

async function runDrillCommand(kind: DrillCommand, argv: string[]): Promise<number> {
  const help = HELPS[kind];
  const flags = parseFlags(
    argv,
    {
      json: { type: 'boolean' },
      'lock-timeout': { type: 'string' },
      ...(kind === 'stop' ? { timeout: { type: 'string' } } : {}),
    },
    help,
  );
  if (!flags) return 0;
  let names = flags.positionals;
  let drill: Drill;
  if (kind === 'link') {
    const state = names.at(-1);
    if (state !== 'up' && state !== 'down')
      throw new UsageError(`lab link NODE... down|up: the last word must be down or up`, {
        hint: help.split('\n')[0],
      });
    names = names.slice(0, -1);
    drill = { kind, state };
  } else if (kind === 'stop') {
    drill = { kind, timeoutMs: durationFlag('timeout', flags.values.timeout, 90_000) };
  } else drill = { kind };
  if (names.length === 0)
    throw new UsageError(`which node? lab ${kind} NODE...`, { hint: help.split('\n')[0] });
  const timeoutMs = lockTimeout(flags.values['lock-timeout'], help);
  const { lab } = loadLab(labfilePath(flags.values, { reads: true }));
  const stop = interruptible(`stopping lab ${kind}`);
  let results: PromiseSettledResult<DrillOutcome>[];
  try {
    const ctx = labContext(lab, ignoreEvents, stop.signal);
    results = await withLabLock(lab.name, { timeoutMs, signal: stop.signal }, async () =>
      runDrill(ctx, await drillTargets(ctx, names), drill),
    );
  } finally {
    stop.dispose();
  }
  const done = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  if (flags.values.json) process.stdout.write(`${JSON.stringify(done, null, 2)}\n`);
  else for (const d of done) process.stdout.write(`${d.node}: ${d.did} (${d.before} -> ${d.after})\n`);
  for (const d of done) if (d.warning) process.stderr.write(`${d.node}: ${d.warning}\n`);
  for (const err of failed)
    process.stderr.write(
      `lab ${kind}: ${describeError(err)}${err instanceof LabError && err.hint ? `\n  hint: ${err.hint}` : ''}\n`,
    );
  return failed.length ? 1 : 0;
}
