import { LabError, describeError } from '../errors.js';
import type { GuestLink } from '../guest/agent.js';
import { pollUntil } from '../runtime/poll.js';
import { probeFleet, type FleetUnit } from '../guest/probes/fleet.js';
import { applyUnits, fleetStartUnits, observeUnits, type ObservedUnit } from '../guest/units.js';
import type { LabSpec } from '../plan/model.js';
import { scheduleUnits, type SchedNode } from '../plan/units.js';
import { sshTargetFor, type LabContext } from './context.js';
import { labAgent, openLink } from './links.js';

/** One row of `lab units`, like `fleetctl list-units`. */
export interface UnitRow {
  unit: string;
  /** The node it runs on (or is placed on); absent when it runs nowhere. */
  node?: string;
  machineId?: string;
  ip?: string;
  load: string;
  active: string;
  sub: string;
  description: string;
}

export interface UnitsResult {
  rows: UnitRow[];
  /** Changes made, per node: `written`, `removed`, `started` unit names. */
  changes: { node: string; written: string[]; removed: string[]; started: string[] }[];
  problems: string[];
}

/** Scheduler's view of a node: its machine-id and the metadata fleet would know. */
export function schedNodes(lab: LabSpec): SchedNode[] {
  return lab.nodes.map((n) => ({
    name: n.name,
    machineId: n.machineId,
    metadata: { lab: lab.name, node: n.name, template: n.template.name },
  }));
}

/** What every reachable node has of this lab's units. */
export async function observeLabUnits(
  lab: LabSpec,
  links: ReadonlyMap<string, GuestLink>,
): Promise<Map<string, Map<string, ObservedUnit>>> {
  const names = lab.units.map((u) => u.name);
  const seen = await Promise.all(
    [...links].map(async ([node, link]) => [node, await observeUnits(link, lab.name, names)] as const),
  );
  return new Map(seen);
}

/** Rows for `lab units` from what the nodes have: a unit with no lab file anywhere runs nowhere. */
export function unitRows(
  lab: LabSpec,
  seen: ReadonlyMap<string, ReadonlyMap<string, ObservedUnit>>,
): UnitRow[] {
  const rows: UnitRow[] = [];
  const names = [
    ...new Set([...lab.units.map((u) => u.name), ...[...seen.values()].flatMap((m) => [...m.keys()])]),
  ];
  for (const unit of names) {
    const spec = lab.units.find((u) => u.name === unit);
    let placed = false;
    for (const node of lab.nodes) {
      const u = seen.get(node.name)?.get(unit);
      if (!u?.hash) continue;
      placed = true;
      rows.push({
        unit,
        node: node.name,
        machineId: node.machineId,
        ip: node.ip,
        load: u.load,
        active: u.active,
        sub: u.sub,
        description: u.description,
      });
    }
    if (!placed)
      rows.push({
        unit,
        load: '-',
        active: '-',
        sub: '-',
        description: spec ? descriptionOf(spec.content) : '',
      });
  }
  return rows;
}

function descriptionOf(content: string): string {
  return /^Description=(.*)$/m.exec(content)?.[1]?.trim() ?? '';
}

/**
 * Schedules the lab's units on the healthy nodes and makes each node match: units keep
 * their node while it stays up; those of a node that went down (restarted by this run)
 * move to the others, as fleet moves units off a dead machine. Then waits until every
 * placed unit is active.
 */
export async function convergeUnits(
  lab: LabSpec,
  links: ReadonlyMap<string, GuestLink>,
  restarted: ReadonlySet<string>,
  opts: { deadlineMs: number; signal?: AbortSignal },
): Promise<UnitsResult> {
  const fleetNode = lab.nodes.find((n) => links.has(n.name) && n.services.includes('fleet'));
  if (fleetNode && lab.units.length) return viaFleet(lab, links.get(fleetNode.name)!);
  const problems: string[] = [];
  const seen = await observeLabUnits(lab, links);
  // Where each unit is now, leaving out nodes that were lost since: their units move.
  const current = new Map<string, string[]>();
  for (const [node, units] of seen)
    for (const u of units.values())
      if (u.hash && !restarted.has(node)) current.set(u.name, [...(current.get(u.name) ?? []), node]);
  const lost = new Set(
    [...seen]
      .filter(([n, units]) => restarted.has(n) && [...units.values()].some((u) => u.hash))
      .map(([n]) => n),
  );
  let eligible = new Set([...links.keys()].filter((n) => !lost.has(n)));
  if (eligible.size === 0) eligible = new Set(links.keys()); // better back where it was than nowhere
  const schedule = scheduleUnits(lab.units, schedNodes(lab), eligible, current);
  for (const u of schedule.unplaced) problems.push(`unit ${u.unit} runs nowhere: ${u.reason}`);

  const changes: UnitsResult['changes'] = [];
  await Promise.all(
    [...links].map(async ([node, link]) => {
      const want = new Map(
        lab.units
          .filter((u) => schedule.placement.get(u.name)?.includes(node))
          .map((u) => [u.name, { content: u.content, hash: u.hash }] as const),
      );
      try {
        const c = await applyUnits(link, want, seen.get(node) ?? new Map(), lab.name);
        if (c.written.length || c.removed.length || c.started.length) changes.push({ node, ...c });
      } catch (err) {
        problems.push(`${node}: units: ${describeError(err)}`);
      }
    }),
  );
  changes.sort((a, b) => a.node.localeCompare(b.node));

  // Every placed unit active (a docker-run unit takes a moment on an emulated guest).
  let last = seen;
  const placed = [...schedule.placement].flatMap(([unit, nodes]) => nodes.map((node) => ({ unit, node })));
  const activeAll = async () => {
    last = await observeLabUnits(lab, links);
    return placed.every((p) => last.get(p.node)?.get(p.unit)?.active === 'active') ? true : undefined;
  };
  if (placed.length > 0 && changes.length > 0) {
    await pollUntil(activeAll, {
      deadlineMs: opts.deadlineMs,
      initialMs: 500,
      factor: 1.5,
      maxMs: 5000,
      ...(opts.signal ? { signal: opts.signal } : {}),
      describe: 'units active',
    }).catch(() => undefined);
  }
  for (const p of placed) {
    const u = last.get(p.node)?.get(p.unit);
    if (u?.active !== 'active')
      problems.push(`unit ${p.unit} on ${p.node} is ${u ? `${u.active} (${u.sub})` : 'missing'}`);
  }
  return { rows: unitRows(lab, last), changes, problems };
}

/** The units through fleet: start what fleet does not run yet, then read fleet's table. */
async function viaFleet(lab: LabSpec, link: GuestLink): Promise<UnitsResult> {
  const before = await probeFleet(link);
  if (before === 'absent')
    return { rows: [], changes: [], problems: [`${link.node}: fleet is configured but fleetctl is missing`] };
  const running = new Set(before.units.filter((u) => u.active === 'active').map((u) => u.unit));
  const start = lab.units.filter((u) => !running.has(u.name));
  const problems: string[] = [];
  await fleetStartUnits(link, start, lab.name).catch((err: unknown) =>
    problems.push(`fleet: ${describeError(err)}`),
  );
  const after = await probeFleet(link);
  const rows = fleetRows(lab, after === 'absent' ? [] : after.units);
  return {
    rows,
    changes: start.length
      ? [
          {
            node: link.node,
            written: start.map((u) => u.name),
            removed: [],
            started: start.map((u) => u.name),
          },
        ]
      : [],
    problems,
  };
}

/** Rows from fleet's `list-units`, its machines matched to nodes by machine-id. */
function fleetRows(lab: LabSpec, units: readonly FleetUnit[]): UnitRow[] {
  return lab.units.map((spec): UnitRow => {
    const u = units.find((x) => x.unit === spec.name);
    const node = lab.nodes.find((n) => u?.machineId && n.machineId.startsWith(u.machineId));
    return {
      unit: spec.name,
      ...(node ? { node: node.name, machineId: node.machineId, ip: node.ip } : {}),
      load: u?.load ?? '-',
      active: u?.active ?? '-',
      sub: u?.sub ?? '-',
      description: u?.desc ?? descriptionOf(spec.content),
    };
  });
}

/** `lab units`: what every running node has of the lab's units, like `fleetctl list-units`. */
export async function listUnits(
  ctx: LabContext,
  timeoutMs = 15_000,
): Promise<{ rows: UnitRow[]; unreachable: string[] }> {
  const [states, secret] = await Promise.all([ctx.virsh.listDomainStates(), ctx.dir.secret(false)]);
  if (!secret)
    throw new LabError(`lab ${ctx.lab.name} has no keys on this host`, { hint: 'run lab up first' });
  const agent = await labAgent(ctx.dir.private);
  const links = new Map<string, GuestLink>();
  const unreachable: string[] = [];
  try {
    await Promise.all(
      ctx.lab.nodes
        .filter((n) => states.get(n.domain) === 'running')
        .map(async (n) => {
          try {
            links.set(n.name, await openLink(agent, sshTargetFor(ctx.lab, n, secret), timeoutMs));
          } catch {
            unreachable.push(n.name);
          }
        }),
    );
    return {
      rows: unitRows(ctx.lab, await observeLabUnits(ctx.lab, links)),
      unreachable: unreachable.sort(),
    };
  } finally {
    for (const l of links.values()) l.close();
    agent?.close();
  }
}
