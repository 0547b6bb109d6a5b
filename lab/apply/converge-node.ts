/**
 * Phase 4 of `lab up`, once per node and in parallel: the plan's actions (disk, seed,
 * define, start), each recorded in the state file, then the waits for SSH and for the
 * node's services. A node's failure is its result, never an exception: the others go on.
 */
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { LabError, NodeError, describeError } from '../errors.js';
import { NODE_STEPS } from '../events.js';
import type { AgentClient, GuestLink } from '../guest/agent.js';
import { LOCAL_IMAGE, dockerRunCheck } from '../guest/probes/docker.js';
import { probeNode, type NodeHealth } from '../guest/probes/index.js';
import { waitForSsh } from '../guest/ssh.js';
import type { NodeSpec } from '../plan/model.js';
import type { NodePlan } from '../plan/plan.js';
import type { BaseImage } from '../providers/images.js';
import { setLink } from '../providers/drills.js';
import { writeSeedIso } from '../providers/iso.js';
import { createOverlay, imageInfo } from '../providers/qemu-img.js';
import { forgetSnapshots, resume, setGuestTime } from '../providers/snapshots.js';
import { SNAPSHOT_PREFIX } from '../store/checkpoints.js';
import type { DesiredNode } from '../render/node.js';
import { failpoint } from '../runtime/failpoint.js';
import { pollUntil } from '../runtime/poll.js';
import { writeAtomic } from '../store/lab-dir.js';
import type { RecordedStep, StateWriter } from '../store/state-file.js';
import { keepRendering } from './rendering.js';
import { sshTargetFor, type LabContext } from './context.js';
import { ensureMembership, leaveBeforeRebuild, type MemberRun } from './membership.js';
import type { Deadlines } from './prepare.js';

/** One node's outcome of `lab up`. */
export interface NodeResult {
  node: string;
  ok: boolean;
  actions: string[];
  /** Step that failed and why. */
  failedStep?: string;
  error?: string;
  health?: NodeHealth;
  /** False under `--no-wait`: the node was started, its SSH and services not awaited. */
  waited?: boolean;
}

/** Everything one node's convergence needs. */
export interface NodeRun {
  ctx: LabContext;
  desired: DesiredNode;
  plan: NodePlan;
  /** The base image of the node's template. */
  image: BaseImage;
  secret: Buffer;
  deadlines: Deadlines;
  state: StateWriter;
  /** Where a healthy node's link is left open for the cluster checks. */
  sessions: Map<string, GuestLink>;
  /** The lab's connection agent, when one answers. */
  agent: Promise<AgentClient | undefined>;
  /** `lab up --no-wait`: start, do not wait. */
  noWait: boolean;
  /** Started by an `up --no-wait` no run has waited for: this look is its boot's. */
  unwaited: boolean;
  /** etcd membership changes of this run, one at a time (membership.ts). */
  members: MemberRun;
}

type Status = 'start' | 'done' | 'skip' | 'fail';

/** Converges one node: provisions what the plan says, then waits until it is healthy. */
export async function convergeNode(run: NodeRun): Promise<NodeResult> {
  const name = run.desired.spec.name;
  const actions = run.plan.actions;
  // The phase lab is in, for the failure's report.
  const at = { step: 'plan' };
  try {
    if (run.plan.conflict) throw new NodeError(name, 'define', run.plan.conflict);
    emit(run, 'image', 'done');
    await provisionNode(run, at);
    if (actions.length === 0) emit(run, 'boot', 'skip', 'already running');
    if (run.noWait) {
      emit(run, 'ssh', 'skip', 'not waited for (--no-wait)');
      return { node: name, ok: true, actions, waited: false };
    }
    const health = await awaitNode(run, at);
    return { node: name, ok: true, actions, health };
  } catch (err) {
    let message =
      err instanceof NodeError ? err.message.replace(`${name}: ${err.step}: `, '') : describeError(err);
    // What was seen last (the serial console's tail) belongs with the failure.
    if (err instanceof LabError && err.hint) message += `\n  ${err.hint}`;
    // The phase lab was in; a lower layer's step (exec, http) goes into the message.
    const failedStep =
      err instanceof NodeError && (NODE_STEPS as readonly string[]).includes(err.step) ? err.step : at.step;
    emit(run, failedStep, 'fail', message);
    return { node: name, ok: false, actions, failedStep, error: message };
  } finally {
    // A rebuild that failed before its node joined again lets the next change go on.
    run.members.removed.get(name)?.();
    run.members.removed.delete(name);
  }
}

function emit(run: NodeRun, step: string, status: Status, detail?: string): void {
  run.ctx.onEvent({ kind: 'node', node: run.desired.spec.name, step, status, ...(detail ? { detail } : {}) });
}

/** The plan's mutating actions in order, each recorded in the state file once done. */
async function provisionNode(run: NodeRun, at: { step: string }): Promise<void> {
  const { ctx, desired: d, plan } = run;
  const name = d.spec.name;
  const record = (step: RecordedStep, extra: { configHash?: string } = {}) =>
    run.state.node(name, { step, ...extra });
  for (const action of plan.actions) {
    switch (action) {
      case 'replace':
        at.step = 'member';
        // An etcd member leaves the cluster before its data goes (a fresh one joins later).
        await leaveBeforeRebuild(ctx.lab, d.spec, run.members);
        at.step = 'disk';
        emit(run, 'disk', 'start', 'replacing: ' + plan.reasons[plan.actions.indexOf('replace')]);
        await dropCheckpoints(run);
        await ctx.virsh.destroy(d.spec.domain);
        await rm(d.paths.disk, { force: true });
        await record('planned');
        break;
      case 'create-disk': {
        at.step = 'disk';
        emit(run, 'disk', 'start');
        const base = run.image;
        const baseSize = (await imageInfo(base.disk, ctx.signal, base.format)).virtualSize;
        // createOverlay makes it under a temporary name: a killed qemu-img leaves no disk.
        await createOverlay(
          base.disk,
          base.format,
          d.paths.disk,
          Math.max(baseSize, d.spec.diskBytes),
          ctx.signal,
        );
        failpoint('after-overlay', name);
        await record('disk');
        emit(run, 'disk', 'done', 'overlay');
        break;
      }
      case 'write-seed':
        at.step = 'seed';
        emit(run, 'seed', 'start');
        if (d.paths.seed)
          await writeSeedIso(d.paths.seed, d.bundle.volumeLabel ?? 'cidata', d.bundle.files, ctx.signal);
        else if (d.paths.fwcfg)
          await writeAtomic(d.paths.fwcfg, Object.values(d.bundle.files)[0] ?? '', 0o600);
        await keepRendering(run.ctx, run.desired, run.secret);
        failpoint('after-seed', name);
        await record('seed');
        emit(run, 'seed', 'done');
        break;
      case 'define':
        at.step = 'define';
        emit(run, 'define', 'start');
        await ctx.virsh.define(d.xml);
        failpoint('after-define', name);
        await record('defined', { configHash: d.configHash });
        emit(run, 'define', 'done');
        break;
      case 'resume':
        // Paused by a checkpoint save or restore that did not finish: the guest runs on
        // where it stopped; its clock is set to the host's (best effort, the guest agent).
        at.step = 'boot';
        emit(run, 'boot', 'start', 'resuming a paused domain');
        await resume(ctx.virsh, d.spec.domain);
        await setGuestTime(ctx.virsh, d.spec.domain).catch((err: unknown) =>
          ctx.onEvent({
            kind: 'log',
            level: 'warn',
            message: `${name}: could not set the guest's clock: ${describeError(err)}`,
          }),
        );
        emit(run, 'boot', 'done', 'resumed');
        break;
      case 'link-up':
        // A `lab link NODE down` drill: the cable is put back.
        at.step = 'boot';
        emit(run, 'boot', 'start', 'setting its network link up');
        await setLink(ctx.virsh, d.spec.domain, d.spec.mac, 'up');
        emit(run, 'boot', 'done', 'link up');
        break;
      case 'start':
        at.step = 'boot';
        emit(run, 'boot', 'start');
        await ctx.virsh.start(d.spec.domain);
        failpoint('after-start', name);
        await record('started');
        emit(run, 'boot', 'done');
        break;
    }
  }
}

/**
 * A node's checkpoints live in its overlay, which a replace deletes: libvirt forgets them
 * too (else it would offer a revert to data that is gone), and the user is told. The
 * lab's record of those checkpoints then reads stale (the disk is another file).
 */
async function dropCheckpoints(run: NodeRun): Promise<void> {
  const name = run.desired.spec.name;
  const dropped = await forgetSnapshots(run.ctx.virsh, run.desired.spec.domain, SNAPSHOT_PREFIX);
  if (dropped.length)
    run.ctx.onEvent({
      kind: 'log',
      level: 'warn',
      message: `${name}: checkpoint${dropped.length > 1 ? 's' : ''} ${dropped.map((s) => s.slice(SNAPSHOT_PREFIX.length)).join(', ')} no longer cover${dropped.length > 1 ? '' : 's'} this node: its disk is re-created`,
    });
}

/** Waits for SSH, then for the services; leaves the healthy node's link in `run.sessions`. */
async function awaitNode(run: NodeRun, at: { step: string }): Promise<NodeHealth> {
  const { ctx, desired: d, plan } = run;
  const name = d.spec.name;
  at.step = 'ssh';
  emit(run, 'ssh', 'start');
  const session = await connectNode(run);
  emit(run, 'ssh', 'done');
  try {
    at.step = 'member';
    const joined = await ensureMembership(ctx.lab, d.spec, session, run.members, run.deadlines.servicesMs);
    if (joined === 'joined' || joined === 'bootstrap')
      ctx.onEvent({
        kind: 'log',
        level: 'info',
        message:
          joined === 'joined'
            ? `${name}: joined etcd as a learner and was promoted once caught up`
            : `${name}: etcd bootstraps with the lab's members`,
      });
    at.step = 'services';
    emit(run, 'services', 'start');
    // Run a container once per boot of a node, and again whenever the check never
    // passed (its image was not imported): a failed check is retried by the next up.
    // Whether it passed is asked while the services are checked.
    const fresh = plan.actions.includes('start') || run.unwaited;
    const tar = d.spec.template.services.docker?.localImage;
    const wantsRun = d.spec.services.includes('docker') && tar !== undefined;
    const present = wantsRun && !fresh ? localImagePresent(session) : Promise.resolve(false);
    const health = await waitHealthy(session, d.spec, run.deadlines.servicesMs, ctx.signal);
    if (wantsRun && (fresh || !(await present))) {
      const ok = await dockerRunCheck(session, tar);
      if (!ok.ok) throw new NodeError(name, 'services', `docker could not run a container: ${ok.detail}`);
    }
    if (health.machineId && health.machineId !== d.spec.machineId) {
      ctx.onEvent({
        kind: 'log',
        level: 'warn',
        message: `${name}: machine-id ${health.machineId} differs from the expected ${d.spec.machineId}`,
      });
    }
    emit(run, 'healthy', 'done');
    run.sessions.set(name, session);
    return health;
  } catch (err) {
    session.close();
    throw err;
  }
}

/**
 * A link to the node. A node left running needs no wait for its boot: the agent's
 * connection (kept from an earlier command) when it has or gets one, else the usual
 * wait. One deadline for the whole phase: the agent's attempt counts against it.
 */
async function connectNode(run: NodeRun): Promise<GuestLink> {
  const { ctx, desired: d, plan } = run;
  const target = sshTargetFor(ctx.lab, d.spec, run.secret);
  const sshStarted = performance.now();
  // A node still booting (started by an `up --no-wait`) is waited for as any boot is.
  const agent = plan.actions.length === 0 && !run.unwaited ? await run.agent : undefined;
  const viaAgent = agent
    ? await agent.connect(target, Math.min(20_000, run.deadlines.sshMs / 2)).then(
        () => agent.link(target),
        () => undefined,
      )
    : undefined;
  return (
    viaAgent ??
    (await waitForSsh(target, {
      deadlineMs: Math.max(1000, run.deadlines.sshMs - (performance.now() - sshStarted)),
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    }).catch(async (err: unknown) => {
      throw await withConsoleTail(err, d.paths.console);
    }))
  );
}

/** Is the run check's image already imported? (Engine API, no guest process.) */
async function localImagePresent(session: GuestLink): Promise<boolean> {
  const r = await session
    .http(
      { socket: '/var/run/docker.sock' },
      { method: 'GET', path: `/images/${LOCAL_IMAGE}/json`, timeoutMs: 30_000 },
    )
    .catch(() => undefined);
  return r?.status === 200;
}

/** Waits until every requested service of the node answers healthy. */
async function waitHealthy(
  session: GuestLink,
  node: NodeSpec,
  deadlineMs: number,
  signal?: AbortSignal,
): Promise<NodeHealth> {
  let last: NodeHealth | undefined;
  try {
    return await pollUntil(
      async () => {
        last = await probeNode(session, {
          services: node.services,
          fleet: 'fleet' in node.template.services,
          load: false,
        });
        const etcdOk =
          !node.services.includes('etcd') || last.etcd?.state === 'leader' || last.etcd?.state === 'follower';
        const dockerOk = !node.services.includes('docker') || last.docker?.state === 'up';
        return etcdOk && dockerOk && last.machineId ? last : undefined;
      },
      {
        deadlineMs,
        initialMs: 500,
        factor: 1.5,
        maxMs: 5000,
        ...(signal ? { signal } : {}),
        describe: `${node.name} services`,
      },
    );
  } catch (err) {
    const seen = last
      ? `etcd ${last.etcd?.state ?? '?'}, docker ${last.docker?.state ?? '?'}${last.lastError ? `, last error: ${last.lastError}` : ''}`
      : 'nothing';
    throw new NodeError(
      node.name,
      'services',
      `not healthy after ${Math.round(deadlineMs / 1000)} s (last seen: ${seen})`,
      { cause: err },
    );
  }
}

/** Adds the last lines of the serial console to a wait error: what the guest was doing. */
async function withConsoleTail(err: unknown, consoleLog: string): Promise<unknown> {
  if (!(err instanceof LabError) || !existsSync(consoleLog)) return err;
  const tail = (await readFile(consoleLog, 'utf8').catch(() => ''))
    .split('\n')
    .filter((l) => l.trim())
    .slice(-5)
    // Colour escapes out first, then any other control character.
    .map((l) => `    ${l.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '')}`) // eslint-disable-line no-control-regex
    .join('\n');
  err.hint = `serial console (${consoleLog}), last lines:\n${tail}`;
  return err;
}
