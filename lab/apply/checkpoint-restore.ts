/**
 * `lab checkpoint restore NAME [NODE...]`: every node reverted to its snapshot, paused,
 * then resumed together, each guest's clock set to the host's, then the same wait as
 * `lab up` (SSH, services, etcd settled, units), reported the same way. Identity is
 * untouched: the same domain, UUID, MAC, machine-id and pinned host key.
 */
import { BadInputError, LabError, describeError } from '../errors.js';
import { stopAgent } from '../guest/agent.js';
import { resume, revertSnapshot, setGuestTime } from '../providers/snapshots.js';
import { applyNetwork } from './network.js';
import { failpoint } from '../runtime/failpoint.js';
import { mapLimit } from '../runtime/limit.js';
import { writeAtomic } from '../store/lab-dir.js';
import { readCheckpoints, writeCheckpoints, type Checkpoint } from '../store/checkpoints.js';
import { definitionDrift, findCheckpoint, secretDigest, staleness } from './checkpoints.js';
import type { LabContext } from './context.js';
import { prepare } from './prepare.js';
import { openState } from './run-state.js';
import { convergeLab, type UpResult } from './up.js';

export interface RestoreOptions {
  /** Only these nodes (none of them an etcd member); all when empty. */
  nodes?: string[];
  /** Restore a stale checkpoint, or one that brings back an older definition. */
  force?: boolean;
}

export interface RestoreResult extends UpResult {
  checkpoint: string;
  restoredNodes: string[];
  /** From the first revert to every node resumed. */
  revertMs: number;
}

/** Brings the lab (or some of its nodes) back to checkpoint `name` and waits until it is healthy. */
export async function restoreCheckpoint(
  ctx: LabContext,
  name: string,
  opts: RestoreOptions = {},
): Promise<RestoreResult> {
  const started = performance.now();
  const book = await readCheckpoints(ctx.dir.private);
  const cp = findCheckpoint(book, name, ctx.lab.name);
  const nodes = chosenNodes(ctx, cp, opts.nodes ?? []);
  const secret = await ctx.dir.secret(false);
  const stale = await staleness(ctx, cp, secret);
  // A node whose snapshot is gone cannot be brought back, forced or not.
  const lost = stale.filter((s) => nodes.some((n) => s.startsWith(`${n}: `)) && !s.includes('identity'));
  if (lost.length)
    throw new LabError(`checkpoint ${name} cannot be restored: ${lost.join('; ')}`, {
      hint: 'lab checkpoint list shows what each checkpoint still covers',
    });
  if (stale.length && !opts.force)
    throw new LabError(`checkpoint ${name} is stale: ${stale.join('; ')}`, {
      hint: `lab checkpoint restore ${name} --force restores it anyway`,
    });
  const before = await prepare(ctx, { buildImages: false, write: false });
  const drift = definitionDrift(
    cp,
    before.desired.filter((d) => nodes.includes(d.spec.name)),
  );
  if (drift.length && !opts.force)
    throw new LabError(`checkpoint ${name} would bring back an older definition: ${drift.join('; ')}`, {
      hint: `lab checkpoint restore ${name} --force restores it; then lab plan shows, and lab up applies, the Labfile`,
    });
  const repinned = !!secret && secretDigest(secret) !== secretDigest(cp.secret);
  if (repinned) await pinAgain(ctx, cp);
  // A managed network down since (a host reboot): the reverted guests plug into it.
  await applyNetwork(ctx, before.plan);
  // Said before the first revert: a restore cut short is finished by itself, never by up.
  book.restoring = { name, nodes, at: new Date().toISOString() };
  await writeCheckpoints(ctx.dir.private, book);
  // The connection agent's kept connections are from after the checkpoint: a reverted
  // guest's TCP state is from before, so they hang rather than fail (3 s a node, measured).
  // The agent starts again, with fresh ones, for the wait below.
  await stopAgent(ctx.dir.private);
  const { revertMs, clocks } = await revertAll(ctx, cp, nodes);
  delete book.restoring;
  book.restored = {
    name,
    at: new Date().toISOString(),
    ...(nodes.length < ctx.lab.nodes.length ? { nodes } : {}),
  };
  await writeCheckpoints(ctx.dir.private, book);
  // What libvirt has now is the checkpoint's: nothing to do but wait, as lab up waits.
  // The nodes not restored are as they were read before the revert; the restored ones get
  // no action. So the reading before serves, unless the keys it rendered with were replaced
  // (asking libvirt again costs 1.2 s here, with three just-resumed TCG guests on 2 cores).
  const prepared = repinned ? await prepare(ctx, { buildImages: false, write: false }) : before;
  // The restored nodes are as the checkpoint left them: waited for, never changed. A node
  // not restored that is down or paused is brought up as lab up would; nothing else.
  for (const p of prepared.plan.nodes) {
    const bringUp =
      !nodes.includes(p.node) && p.actions.length === 1 && /^(start|resume)$/.test(p.actions[0]!);
    if (bringUp) continue;
    p.actions = [];
    p.reasons = [];
  }
  prepared.plan.network = [];
  const state = await openState(ctx, prepared.plan, prepared.desired);
  // The clocks are set while SSH and the services are waited for (about 2 s the three,
  // measured), and are right before the restore says it is done.
  const result = await convergeLab(ctx, prepared, state, { noWait: false, started }).finally(() => clocks);
  return { ...result, checkpoint: name, restoredNodes: nodes, revertMs: Math.round(revertMs) };
}

/**
 * The nodes to restore: all, or the ones named. An etcd member is never restored alone:
 * a member brought back to an older raft log panics once the leader's commit index is
 * past it ("tocommit(N) is out of range", etcd-io/etcd#10254).
 */
export function chosenNodes(ctx: Pick<LabContext, 'lab'>, cp: Checkpoint, named: string[]): string[] {
  const all = ctx.lab.nodes.map((n) => n.name);
  const unknown = named.filter((n) => !all.includes(n));
  if (unknown.length)
    throw new BadInputError(
      `no node ${unknown.join(', ')} in lab ${ctx.lab.name} (nodes: ${all.join(', ')})`,
    );
  const outside = named.filter((n) => !cp.nodes[n]);
  if (outside.length)
    throw new BadInputError(
      `checkpoint ${cp.name} does not hold ${outside.join(', ')}: joined since it was taken`,
    );
  const wanted = new Set(named);
  if (wanted.size === 0 || all.every((n) => wanted.has(n))) return all.filter((n) => cp.nodes[n]);
  const members = ctx.lab.nodes.filter((n) => wanted.has(n.name) && n.services.includes('etcd'));
  if (members.length)
    throw new LabError(
      `${members.map((n) => n.name).join(', ')} ${members.length > 1 ? 'are etcd members' : 'is an etcd member'}: restored alone, a member's older raft log makes it panic once the leader is past it (etcd-io/etcd#10254)`,
      { hint: 'restore the whole lab: lab checkpoint restore NAME' },
    );
  return all.filter((n) => wanted.has(n));
}

/** The keys the checkpoint's guests were provisioned with, pinned again (the lab's secret then). */
async function pinAgain(ctx: LabContext, cp: Checkpoint): Promise<void> {
  const secret = Buffer.from(cp.secret, 'hex');
  await writeAtomic(ctx.dir.secretFile, `${cp.secret}\n`, 0o600);
  await ctx.dir.writeAccessFiles(ctx.lab, secret);
  ctx.onEvent({
    kind: 'log',
    level: 'warn',
    message: `the lab's keys are the checkpoint's again: its guests hold those host keys`,
  });
}

/**
 * Revert each node (paused) in parallel, then resume them together. Returns the time that
 * took and the setting of the guests' clocks, started and not waited for: a reverted
 * guest's clock is as far behind as the checkpoint is old, and nothing lab waits for next
 * reads the wall clock (etcd's raft ticks are monotonic).
 */
async function revertAll(
  ctx: LabContext,
  cp: Checkpoint,
  nodes: string[],
): Promise<{ revertMs: number; clocks: Promise<void> }> {
  const specs = ctx.lab.nodes.filter((n) => nodes.includes(n.name));
  // Not cut by a first Ctrl-C: a revert half done is worse than one finished.
  const virsh = ctx.virsh.uncancellable();
  const t0 = performance.now();
  const reverted = await Promise.allSettled(
    specs.map(async (node) => {
      // Shown as the node's boot step (up's live view knows it): from checkpoint NAME.
      ctx.onEvent({
        kind: 'node',
        node: node.name,
        step: 'boot',
        status: 'start',
        detail: `checkpoint ${cp.name}`,
      });
      await revertSnapshot(virsh, node.domain, cp.snapshot);
      failpoint('restore-after-revert', node.name);
    }),
  );
  const failed = reverted.flatMap((r, i) =>
    r.status === 'rejected' ? [[specs[i]!.name, r.reason] as const] : [],
  );
  if (failed.length)
    throw new LabError(
      `checkpoint ${cp.name}: ${failed.map(([n, r]) => `${n} not reverted: ${describeError(r)}`).join('; ')}`,
      { hint: `the lab is half restored and paused: lab checkpoint restore ${cp.name} finishes it` },
    );
  await mapLimit(specs, 16, (node) => resume(virsh, node.domain));
  const revertMs = performance.now() - t0;
  failpoint('restore-after-resume');
  for (const node of specs)
    ctx.onEvent({
      kind: 'node',
      node: node.name,
      step: 'boot',
      status: 'done',
      detail: `checkpoint ${cp.name}`,
    });
  const clocks = mapLimit(specs, 16, async (node) => {
    await setGuestTime(virsh, node.domain).catch((err: unknown) =>
      ctx.onEvent({
        kind: 'log',
        level: 'warn',
        message: `${node.name}: could not set the guest's clock (guest agent): ${describeError(err)}`,
      }),
    );
  }).then(() => undefined);
  return { revertMs, clocks };
}
