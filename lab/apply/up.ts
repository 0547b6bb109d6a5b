/**
 * `lab up`: the pipeline, one phase per module.
 *   preflight.ts      the host is fit, nothing of someone else's is in the way
 *   prepare.ts        images, accelerator, what exists, every node rendered, the plan
 *   network.ts        the managed network, under the host-wide lock
 *   run-state.ts      the state file, opened before any node is touched
 *   converge-node.ts  per node, in parallel: disk, seed, define, start, SSH, services
 *   cluster.ts        etcd settles on one leader, a write reads back, machine-ids distinct
 *   units.ts          the Labfile's units placed with fleet's semantics
 */
import { BadInputError, LabError } from '../errors.js';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { AgentClient, type GuestLink } from '../guest/agent.js';
import { discoveryRefusal, type LabPlan } from '../plan/plan.js';
import type { DomainType } from '../render/types.js';
import { pausepoint } from '../runtime/failpoint.js';
import { mapLimit } from '../runtime/limit.js';
import { checkCluster, type ClusterCheck } from './cluster.js';
import { sshTargetFor, type LabContext } from './context.js';
import { convergeNode, type NodeResult } from './converge-node.js';
import { applyNetwork } from './network.js';
import { checkAddressesFree, preflightUp } from './preflight.js';
import { deadlines, prepare, type Prepared } from './prepare.js';
import { openState, recordResults, unwaitedNodes } from './run-state.js';
import type { StateWriter } from '../store/state-file.js';
import { readCheckpoints, restoreUnfinished } from '../store/checkpoints.js';
import { unfinishedRotation } from './rotate-keys.js';
import { convergeUnits, type UnitsResult } from './units.js';
import { Serial, type MemberRun, type Reachable } from './membership.js';
import { leaveNodes, type LeaveResult } from './leave.js';

export type { NodeResult } from './converge-node.js';

export interface UpResult {
  ok: boolean;
  accelerator: DomainType;
  changed: boolean;
  nodes: NodeResult[];
  /** Nodes the Labfile no longer names, taken out of etcd and removed. */
  left?: LeaveResult[];
  cluster: ClusterCheck;
  /** The lab's units after scheduling (absent when the lab has none and none were found). */
  units?: UnitsResult;
  ms: number;
}

export interface UpOptions {
  /** Nodes to re-create from a fresh overlay and seed (`lab reset NODE`). */
  reset?: string[];
  /**
   * Provision and start every node, then return without waiting for SSH or services
   * (`lab up --no-wait`; kcli's default, terraform-provider-libvirt without wait_for_lease):
   * `lab status` shows them come up, and the next `lab up` waits.
   */
  noWait?: boolean;
}

/** Creates or converges the lab, waits until every node is healthy. */
export async function up(ctx: LabContext, opts: UpOptions = {}): Promise<UpResult> {
  const started = performance.now();
  const phase = phaseLogger(ctx, started);
  // Refused before anything is written (keys, folders, disks).
  await preflightUp(ctx);
  const unfinished = restoreUnfinished(await readCheckpoints(ctx.dir.private));
  if (unfinished) throw unfinished;
  // Nodes with the old keys and nodes with the new: lab up would re-pin neither right.
  if (await unfinishedRotation(ctx))
    throw new LabError(
      `a key rotation of lab ${ctx.lab.name} was cut short: some nodes may have their new keys`,
      {
        hint: 'lab rotate-keys finishes it',
      },
    );
  phase('preflight');
  // A lab folder this run creates is removed again when the run is refused before any
  // node is touched (an address in use on the LAN): a refused up leaves nothing.
  const newLab = !existsSync(ctx.dir.root);
  const prepared = await prepare(ctx, { buildImages: true, write: true });
  const { accel, desired, plan, observed } = prepared;
  for (const name of opts.reset ?? []) planReset(plan, name);
  const refused = discoveryRefusal(ctx.lab, plan, observed);
  if (refused) throw new BadInputError(refused);
  phase('plan');
  if (accel.warning) ctx.onEvent({ kind: 'log', level: 'warn', message: accel.warning });
  // The network before the state file: a subnet another lab took since preflight is
  // refused here too, and that refusal leaves nothing either.
  await checkAddressesFree(ctx, plan, observed)
    .then(() => pausepoint('before-network', ctx.signal))
    .then(() => applyNetwork(ctx, plan))
    .catch(async (err: unknown) => {
      if (newLab) await rm(ctx.dir.root, { recursive: true, force: true });
      throw err;
    });
  const state = await openState(ctx, plan, desired);
  return convergeLab(ctx, prepared, state, { noWait: opts.noWait ?? false, started, leave: true });
}

/**
 * What `lab up` does once the network and the state file are there: every node's plan in
 * parallel, then the lab-wide checks and the units; each node's outcome recorded. A
 * checkpoint restore runs it too, with nothing left to do but wait.
 */
export async function convergeLab(
  ctx: LabContext,
  prepared: Prepared,
  state: StateWriter,
  opts: { noWait: boolean; started: number; leave?: boolean },
): Promise<UpResult> {
  const { started } = opts;
  const { accel, desired, plan } = prepared;
  const phase = phaseLogger(ctx, started);
  const unwaited = unwaitedNodes(plan, state);
  // Healthy nodes keep their SSH connection for the cluster checks: a handshake with an
  // emulated guest costs a second or more. Nodes that were already running are reached
  // through the lab's connection agent, which keeps connections open between commands.
  const sessions = new Map<string, GuestLink>();
  const agent = opts.noWait
    ? Promise.resolve(undefined)
    : AgentClient.get(ctx.dir.private, { start: true }).catch(() => undefined);
  let results: NodeResult[];
  let after: { cluster: ClusterCheck; units: UnitsResult };
  const members = memberRun(ctx, prepared, state, agent);
  const leaving = opts.leave ? plan.leaving : [];
  const left: LeaveResult[] = [];
  try {
    // A node that leaves a Labfile node its address goes first; the others once the
    // nodes have converged, when the members that stay (and any that joined) answer.
    left.push(
      ...(await leaveNodes(
        ctx,
        leaving.filter((l) => l.first),
        state,
        members.run,
      )),
    );
    const stuck = left.find((l) => !l.ok);
    if (stuck)
      throw new LabError(
        `${stuck.node} could not leave, and a node of the Labfile takes its address: ${stuck.error}`,
        { hint: 'fix what it says and run lab up again; nothing else was changed' },
      );
    results = await mapLimit(desired, 8, (d) =>
      convergeNode({
        ctx,
        desired: d,
        plan: plan.nodes.find((p) => p.node === d.spec.name)!,
        image: prepared.images.get(d.spec.templateRef)!,
        secret: prepared.secret,
        deadlines: deadlines(accel.type),
        state,
        sessions,
        agent,
        noWait: opts.noWait,
        unwaited: unwaited.has(d.spec.name),
        members: members.run,
      }),
    );
    phase('nodes');
    left.push(
      ...(await leaveNodes(
        ctx,
        leaving.filter((l) => !l.first),
        state,
        members.run,
      )),
    );
    if (leaving.length) phase('leave');
    after = opts.noWait
      ? { cluster: { problems: [] }, units: { rows: [], changes: [], problems: [] } }
      : await checkLab(ctx, prepared, results, sessions, unwaited, phase);
  } finally {
    members.close();
    for (const s of sessions.values()) s.close();
    const a = await agent;
    // The next command finds the agent already connected to every node that answered.
    a?.warm(
      desired
        .filter((d) => sessions.has(d.spec.name))
        .map((d) => sshTargetFor(ctx.lab, d.spec, prepared.secret)),
    );
    a?.close();
  }
  await recordResults(state, results);
  const { cluster, units } = after;
  const changed =
    plan.network.length > 0 ||
    plan.nodes.some((n) => n.actions.length > 0) ||
    left.some((l) => l.actions.length > 0) ||
    units.changes.length > 0;
  return {
    ok:
      results.every((r) => r.ok) &&
      left.every((l) => l.ok) &&
      cluster.problems.length === 0 &&
      units.problems.length === 0,
    accelerator: accel.type,
    changed,
    nodes: results,
    ...(left.length ? { left } : {}),
    cluster,
    ...(units.rows.length ? { units } : {}),
    ms: Math.round(performance.now() - started),
  };
}

/**
 * The run's etcd membership work: one change at a time; peers reached through the agent
 * (or a connection of their own), given a few seconds to answer; the members that were
 * healthy before and stay as they are, which a new node must join rather than bootstrap.
 */
function memberRun(
  ctx: LabContext,
  prepared: Prepared,
  state: StateWriter,
  agent: Promise<AgentClient | undefined>,
): { run: MemberRun; close: () => void } {
  const opened: GuestLink[] = [];
  const expectedPeers = prepared.desired
    .filter((d) => d.spec.services.includes('etcd'))
    .filter((d) => state.previous?.nodes[d.spec.name]?.step === 'healthy')
    .filter((d) => !prepared.plan.nodes.find((p) => p.node === d.spec.name)?.actions.includes('create-disk'))
    .map((d) => d.spec.name);
  const etcdPlans = prepared.desired
    .filter((d) => d.spec.services.includes('etcd'))
    .map((d) => prepared.plan.nodes.find((p) => p.node === d.spec.name));
  const fresh = etcdPlans.every((p) => p?.actions.includes('create-disk'));
  const linkTo = async (node: Reachable): Promise<GuestLink | undefined> => {
    const target = sshTargetFor(ctx.lab, node, prepared.secret);
    const a = await agent;
    if (a)
      return a.connect(target, 5000).then(
        () => a.link(target),
        () => undefined,
      );
    const { GuestSession } = await import('../guest/ssh.js');
    const s = await GuestSession.connect(target, { timeoutMs: 5000 }).catch(() => undefined);
    if (s) opened.push(s);
    return s;
  };
  return {
    run: {
      serial: new Serial(),
      linkTo,
      expectedPeers,
      fresh,
      removed: new Map(),
      leaving: prepared.plan.leaving.filter((l) => l.ip).map((l) => ({ name: l.node, ip: l.ip! })),
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    },
    close: () => opened.forEach((s) => s.close()),
  };
}

/** Phase times for --debug: where a re-run spends its seconds. */
function phaseLogger(ctx: LabContext, started: number): (name: string) => void {
  return (name) =>
    ctx.onEvent({
      kind: 'log',
      level: 'debug',
      message: `phase ${name} done at ${((performance.now() - started) / 1000).toFixed(2)} s`,
    });
}

/** `lab reset NODE`: the node is re-created from a fresh overlay and seed, whatever libvirt has. */
function planReset(plan: LabPlan, name: string): void {
  const p = plan.nodes.find((n) => n.node === name)!;
  p.actions = ['replace', 'create-disk', 'write-seed', 'define', 'start'];
  p.reasons = ['lab reset', 'fresh overlay', 'fresh seed', 'redefine', 'boot'];
}

/** The lab-wide checks and the units, side by side (the units need no etcd). */
async function checkLab(
  ctx: LabContext,
  prepared: Prepared,
  results: NodeResult[],
  sessions: Map<string, GuestLink>,
  unwaited: Set<string>,
  phase: (name: string) => void,
): Promise<{ cluster: ClusterCheck; units: UnitsResult }> {
  if (ctx.lab.units.length)
    ctx.onEvent({ kind: 'log', level: 'info', message: `units: scheduling ${ctx.lab.units.length}` });
  const restarted = new Set([
    ...prepared.plan.nodes.filter((p) => p.actions.includes('start')).map((p) => p.node),
    ...unwaited,
  ]);
  const [cluster, units] = await Promise.all([
    checkCluster(ctx, prepared.desired, results, prepared.secret, sessions).finally(() => phase('cluster')),
    convergeUnits(ctx.lab, sessions, restarted, {
      deadlineMs: deadlines(prepared.accel.type).servicesMs,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    }).finally(() => phase('units')),
  ]);
  for (const c of units.changes)
    ctx.onEvent({
      kind: 'log',
      level: 'info',
      message: `${c.node}: units ${[
        c.written.length ? `written ${c.written.join(' ')}` : '',
        c.removed.length ? `removed ${c.removed.join(' ')}` : '',
        c.started.length ? `started ${c.started.join(' ')}` : '',
      ]
        .filter(Boolean)
        .join(', ')}`,
    });
  return { cluster, units };
}
