// The documents `lab plan --json` and `lab machines --json` print (schemas/cli/plan.json,
// machines.json), shaped here so that the command and the schema test use the one function.
import type { ConfigChanges } from './config-changes.js';
import { isNoop, type LabPlan, type MemberChange } from './plan.js';

export interface PlanJsonInput {
  lab: string;
  accelerator: string;
  plan: LabPlan;
  member: ReadonlyMap<string, MemberChange>;
  /** The state libvirt reports for each node that has a domain. */
  states: ReadonlyMap<string, string>;
  /** What changed in the first-boot files of nodes replaced for it. */
  changed?: ReadonlyMap<string, ConfigChanges>;
}

export function planJson({ lab, accelerator, plan, member, states, changed = new Map() }: PlanJsonInput) {
  const nodes = plan.nodes.map((p) => ({
    ...p,
    ...(member.has(p.node) ? { member: member.get(p.node) } : {}),
    ...(changed.get(p.node)?.changes ? { changes: changed.get(p.node)!.changes } : {}),
    ...(changed.get(p.node)?.note ? { changesNote: changed.get(p.node)!.note } : {}),
    state: states.get(p.node) ?? 'missing',
    then: ['wait-ssh', 'probe'],
  }));
  const leaving = plan.leaving
    .filter((l) => l.actions.length > 0)
    .map((l) => ({
      node: l.node,
      actions: l.actions,
      reasons: l.reasons,
      ...(member.has(l.node) ? { member: member.get(l.node) } : {}),
      state: l.state,
      ...(l.domain ? { domain: l.domain } : {}),
      files: l.files,
    }));
  return { lab, accelerator, noop: isNoop(plan), network: plan.network, nodes, leaving };
}

/** `lab machines --json`: fleetctl list-machines' columns, for nodes whose machine-id is known. */
export function machinesJson(
  lab: string,
  nodes: readonly { name: string; ip: string; machineId?: string | null }[],
) {
  return nodes
    .filter((n) => n.machineId)
    .map((n) => ({ machine: n.machineId!, ip: n.ip, metadata: `lab=${lab},node=${n.name}`, node: n.name }));
}
