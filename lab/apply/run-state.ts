/**
 * The lab's state file across one `lab up`: opened from the plan before any node is
 * touched, written durably after every step of every node (converge-node.ts), closed with
 * each node's outcome.
 */
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { LabPlan } from '../plan/plan.js';
import type { DesiredNode } from '../render/node.js';
import {
  readState,
  StateWriter,
  STATE_VERSION,
  type LabState,
  type NodeRecord,
  type RecordedStep,
} from '../store/state-file.js';
import type { LabContext } from './context.js';
import type { NodeResult } from './converge-node.js';

/**
 * The lab's state file for this run: what exists is read from libvirt (the plan); the file
 * records how far each node got, written durably after every step. A damaged file is
 * never trusted: the backup, or libvirt, has the truth.
 */
export async function openState(
  ctx: LabContext,
  plan: LabPlan,
  desired: DesiredNode[],
): Promise<StateWriter> {
  // Temp files of a writer that was killed before its rename (under the lab's lock: no
  // other writer runs): the state's and the keys', a seed's staging folder and a half
  // overlay or seed (a SIGKILL mid qemu-img or xorriso).
  for (const f of await readdir(ctx.dir.private).catch(() => [] as string[]))
    if (/^[a-z_.0-9]+\.\d+\.tmp$/.test(f) && !f.endsWith(`.${process.pid}.tmp`))
      await rm(path.join(ctx.dir.private, f), { force: true });
  for (const f of await readdir(ctx.dir.disks).catch(() => [] as string[]))
    if (/\.(partial|staging-[A-Za-z0-9]+)$/.test(f))
      await rm(path.join(ctx.dir.disks, f), { force: true, recursive: true });
  const before = await readState(ctx.dir.stateFile);
  if (before.source === 'backup')
    ctx.onEvent({
      kind: 'log',
      level: 'warn',
      message: `${ctx.dir.stateFile} was damaged: using its backup; libvirt's metadata decides what exists`,
    });
  const net = ctx.lab.network;
  const now = new Date().toISOString();
  const entries: [string, NodeRecord][] = desired.map((d) => {
    const p = plan.nodes.find((n) => n.node === d.spec.name)!;
    const prev = before.state?.nodes[d.spec.name];
    const step: RecordedStep = p.actions.length === 0 && prev ? prev.step : 'planned';
    const record: NodeRecord = {
      domain: d.spec.domain,
      ip: d.spec.ip,
      ...(prev?.configHash ? { configHash: prev.configHash } : {}),
      step,
      updated: now,
    };
    return [d.spec.name, record];
  });
  // Nodes the Labfile dropped keep a record until they are gone: a run cut short finds
  // them again by it.
  for (const l of plan.leaving.filter((x) => x.actions.length > 0)) {
    const prev = before.state?.nodes[l.node];
    entries.push([
      l.node,
      {
        domain: l.domain ?? prev?.domain ?? `${ctx.lab.name}-${l.node}`,
        ip: l.ip ?? prev?.ip ?? '',
        step: 'leaving',
        updated: now,
      },
    ]);
  }
  const state: LabState = {
    version: STATE_VERSION,
    serial: before.state?.serial ?? 0,
    lab: ctx.lab.name,
    // Where the lab was brought up from: `--lab NAME` and commands run from this folder find it.
    ...(ctx.lab.source ? { labfile: ctx.lab.source } : {}),
    uri: ctx.virsh.uri,
    updated: now,
    network: {
      mode: net.mode,
      bridge: net.bridge,
      ...(net.libvirtName ? { libvirtName: net.libvirtName } : {}),
      ...(net.mode === 'managed' ? { cidr: net.cidr } : {}),
    },
    nodes: Object.fromEntries(entries),
  };
  const writer = new StateWriter(ctx.dir.stateFile, state, before.state);
  await writer.update(() => {});
  return writer;
}

/** Each node's outcome, as the last write of the run. */
export async function recordResults(state: StateWriter, results: NodeResult[]): Promise<void> {
  await state.update((s) => {
    for (const r of results) {
      // A node --no-wait left as it was (no action, not looked at) keeps its step.
      if (r.waited === false && r.actions.length === 0) continue;
      s.nodes[r.node] = {
        ...s.nodes[r.node]!,
        step: !r.ok ? 'failed' : r.waited === false ? 'started' : 'healthy',
        ...(r.ok ? {} : { error: r.error ?? 'failed' }),
        updated: new Date().toISOString(),
      };
    }
  });
}

/**
 * Nodes an `up --no-wait` started that no run has waited for since: this run's first
 * look at them is their boot's (their units placed anew, the container check run).
 */
export function unwaitedNodes(plan: LabPlan, state: StateWriter): Set<string> {
  return new Set(
    plan.nodes
      .filter((p) => p.actions.length === 0 && state.current.nodes[p.node]?.step === 'started')
      .map((p) => p.node),
  );
}
