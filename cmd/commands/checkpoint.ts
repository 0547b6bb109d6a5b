import { deleteCheckpoint, listCheckpoints } from '../../lab/apply/checkpoints.js';
import { saveCheckpoint } from '../../lab/apply/checkpoint-save.js';
import { restoreCheckpoint, type RestoreResult } from '../../lab/apply/checkpoint-restore.js';
import { labContext } from '../../lab/apply/context.js';
import { withLabLock } from '../../lab/apply/locking.js';
import { ignoreEvents } from '../../lab/events.js';
import { loadLab } from '../../lab/spec/load.js';
import { CHECKPOINT_NAME } from '../../lab/store/checkpoints.js';
import { labfilePath, parseFlags, UsageError, type Flags } from '../args.js';
import { plainEventPrinter, printWarnings, table } from '../output.js';
import { lockTimeout, operate } from './up.js';

const HELP = `Usage: lab checkpoint save NAME [--force]
       lab checkpoint restore NAME [NODE...] [--force] [--json]
       lab checkpoint list [--json]
       lab checkpoint delete NAME
       (each also takes -f Labfile.yaml and --lock-timeout DURATION)

Saves the whole running lab and brings it back in seconds, instead of a reboot and a
re-provision. save pauses every node, takes an internal snapshot of each with its
memory (kept in the node's own qcow2 overlay; the base image is never written) and
resumes them together, so a restored cluster resumes from one instant. restore brings
every node back, resumes them together, sets each guest's clock to the host's, then
waits until SSH and the services are healthy, as lab up does. Identity is untouched:
the same UUID, MAC, machine-id and pinned host key.

restore NAME NODE... restores those nodes only; never an etcd member (its older raft log
makes it panic once the leader is past it). A checkpoint is stale when nodes joined or
left, or the lab's keys changed since: restore refuses it unless --force, and one that
would bring back an older definition than the Labfile's (memory, CPUs, first-boot
config) too. A node that was reset or replaced since lost its share of the checkpoint
with its old disk: that checkpoint cannot be restored (lab reset says so). A restore
cut short is finished by running it again (lab up refuses the half-restored lab).
lab down removes the checkpoints with the lab.

Options:
  --force   save: replace a checkpoint of that name; restore: restore a stale one, or an
            older definition (lab plan then shows, and lab up applies, the Labfile)
  --json    list: the checkpoints as JSON; restore: the outcome as JSON

Examples:
  lab checkpoint save exercise3
  lab checkpoint restore exercise3
  lab checkpoint list --json | jq '.checkpoints[] | {name, stale}'
  lab checkpoint delete exercise3
`;

export async function run(argv: string[]): Promise<number> {
  const flags = parseFlags(
    argv,
    { json: { type: 'boolean' }, force: { type: 'boolean' }, 'lock-timeout': { type: 'string' } },
    HELP,
  );
  if (!flags) return 0;
  const [verb, ...args] = flags.positionals;
  const usage = HELP.split('\n').slice(0, 4).join('\n');
  switch (verb) {
    case 'save':
      return save(flags, nameOf(args, 'save', 1));
    case 'restore':
      return restore(flags, nameOf(args, 'restore', Infinity), args.slice(1));
    case 'list':
      if (args.length) throw new UsageError(`lab checkpoint list takes no name, not: ${args.join(' ')}`);
      return list(flags);
    case 'delete':
      return remove(flags, nameOf(args, 'delete', 1));
    case undefined:
      throw new UsageError('which? lab checkpoint save|restore|list|delete', { hint: usage });
    default:
      throw new UsageError(`unknown checkpoint command "${verb}": save, restore, list or delete`, {
        hint: usage,
      });
  }
}

/** The checkpoint name a verb was given (and no more words than it takes). */
function nameOf(args: string[], verb: string, most: number): string {
  const [name] = args;
  if (name === undefined)
    throw new UsageError(`which checkpoint? lab checkpoint ${verb} NAME`, { hint: HELP.split('\n')[0] });
  if (args.length > most)
    throw new UsageError(`lab checkpoint ${verb} takes one name, not: ${args.slice(most).join(' ')}`);
  if (!CHECKPOINT_NAME.test(name))
    throw new UsageError(
      `checkpoint name ${JSON.stringify(name)}: expected lowercase letters, digits, '.', '_' or '-' (at most 40)`,
    );
  return name;
}

function contextOf(flags: Flags, events = true) {
  const { lab } = loadLab(labfilePath(flags.values));
  if (events) printWarnings(lab);
  return labContext(lab, events ? plainEventPrinter({ debug: Boolean(flags.values.debug) }) : ignoreEvents);
}

async function save(flags: Flags, name: string): Promise<number> {
  const ctx = contextOf(flags);
  // The nodes are paused for the save: a first Ctrl-C waits for it (seconds) so that they
  // run again; a second ends lab at once (lab up then resumes them).
  let signalled: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (signalled) process.exit(sig === 'SIGTERM' ? 143 : 130);
    signalled = sig;
    process.stderr.write(
      `${sig}: finishing the checkpoint first, so that the nodes run again (again to stop at once)\n`,
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let r;
  try {
    r = await withLabLock(ctx.lab.name, { timeoutMs: lockTimeout(flags.values['lock-timeout'], HELP) }, () =>
      saveCheckpoint(ctx, name, { force: Boolean(flags.values.force) }),
    );
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (flags.values.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  else
    process.stdout.write(
      `checkpoint ${r.name} saved: ${r.nodes.length} nodes, ${mib(r.sizeBytes)} of memory state, paused ${seconds(r.pausedMs)}, in ${seconds(r.ms)}\n`,
    );
  if (signalled) return signalled === 'SIGTERM' ? 143 : 130;
  return 0;
}

async function restore(flags: Flags, name: string, nodes: string[]): Promise<number> {
  const { lab } = loadLab(labfilePath(flags.values));
  return operate<RestoreResult>(
    lab,
    flags,
    HELP,
    (ctx) => restoreCheckpoint(ctx, name, { nodes, force: Boolean(flags.values.force) }),
    (r) =>
      `restored from checkpoint ${r.checkpoint}${r.restoredNodes.length < lab.nodes.length ? ` (${r.restoredNodes.join(', ')})` : ''}: reverted and resumed in ${seconds(r.revertMs)}, healthy in ${seconds(r.ms)}\n`,
  );
}

async function list(flags: Flags): Promise<number> {
  const ctx = contextOf(flags, false);
  const r = await listCheckpoints(ctx);
  if (flags.values.json) {
    process.stdout.write(`${JSON.stringify({ lab: ctx.lab.name, ...r }, null, 2)}\n`);
    return 0;
  }
  if (r.checkpoints.length === 0) {
    process.stdout.write(`lab ${ctx.lab.name} has no checkpoints (lab checkpoint save NAME takes one)\n`);
    return 0;
  }
  const rows = [['NAME', 'CREATED', 'NODES', 'SIZE', 'STATE']];
  for (const c of r.checkpoints)
    rows.push([
      c.name,
      c.created.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
      String(c.nodes.length),
      mib(c.sizeBytes),
      c.stale.length ? `stale: ${c.stale.join('; ')}` : 'ok',
    ]);
  let out = table(rows);
  if (r.restored) out += `last restored: ${r.restored.name} at ${r.restored.at}\n`;
  process.stdout.write(out);
  return 0;
}

async function remove(flags: Flags, name: string): Promise<number> {
  const ctx = contextOf(flags);
  await withLabLock(ctx.lab.name, { timeoutMs: lockTimeout(flags.values['lock-timeout'], HELP) }, () =>
    deleteCheckpoint(ctx, name),
  );
  process.stdout.write(`checkpoint ${name} deleted\n`);
  return 0;
}

const mib = (bytes: number) => `${Math.round(bytes / 1024 ** 2)} MiB`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
