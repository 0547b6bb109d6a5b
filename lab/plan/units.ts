/**
 * Units scheduled on the lab's nodes with fleet's semantics, by lab itself where the
 * image has no fleet (today's images): the walkthrough's `[X-Fleet]` section decides.
 * Pure: parse, and a deterministic scheduler.
 */

/** Scheduling options of one unit, from its `[X-Fleet]` section. */
export interface FleetOptions {
  /** Glob patterns of units this one must not share a machine with (X-Conflicts, Conflicts). */
  conflicts: string[];
  /** The unit this one must run beside (X-ConditionMachineOf, MachineOf). */
  machineOf?: string;
  /** A machine-id (or its prefix) this one must run on (X-ConditionMachineID, MachineID). */
  machineId?: string;
  /** `key=value` pairs the machine's metadata must have (X-ConditionMachineMetadata, MachineMetadata). */
  metadata: [string, string][];
  /** Run on every eligible machine (Global=true). */
  global: boolean;
}

/** One unit of the Labfile, resolved. */
export interface UnitSpec {
  name: string;
  content: string;
  /** sha256 of the content: a changed unit is rewritten and restarted. */
  hash: string;
  fleet: FleetOptions;
}

/** fleet's `[X-Fleet]` keys, the old X- names beside the newer ones. */
const KEYS: Record<string, keyof FleetOptions> = {
  'X-Conflicts': 'conflicts',
  Conflicts: 'conflicts',
  'X-ConditionMachineOf': 'machineOf',
  MachineOf: 'machineOf',
  'X-ConditionMachineID': 'machineId',
  MachineID: 'machineId',
  'X-ConditionMachineMetadata': 'metadata',
  MachineMetadata: 'metadata',
  Global: 'global',
};

/** A unit name systemd and fleet accept: `hello.service`, `apache.1.service`, `app@2.service`. */
export const UNIT_NAME_RE = /^[a-zA-Z0-9:_.@-]{1,200}\.service$/;

/**
 * Reads the `[X-Fleet]` section of a unit file. Returns the options and the problems
 * (unknown keys, bad values) with their line numbers (1-based, in the unit text).
 */
export function parseFleetOptions(content: string): {
  options: FleetOptions;
  problems: { line: number; message: string }[];
} {
  const options: FleetOptions = { conflicts: [], metadata: [], global: false };
  const problems: { line: number; message: string }[] = [];
  let section = '';
  content.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) return;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      return;
    }
    if (section !== 'X-Fleet') return;
    const eq = line.indexOf('=');
    const key = eq < 0 ? line : line.slice(0, eq).trim();
    const value = eq < 0 ? '' : line.slice(eq + 1).trim();
    const field = KEYS[key];
    if (!field) {
      problems.push({
        line: i + 1,
        message: `unknown [X-Fleet] key ${key} (known: ${Object.keys(KEYS).join(', ')})`,
      });
      return;
    }
    if (field === 'conflicts') options.conflicts.push(...value.split(/\s+/).filter(Boolean));
    else if (field === 'machineOf') {
      if (!UNIT_NAME_RE.test(value))
        problems.push({ line: i + 1, message: `${key} needs a unit name, not "${value}"` });
      else options.machineOf = value;
    } else if (field === 'machineId') {
      if (!/^[0-9a-f]{1,32}$/.test(value))
        problems.push({ line: i + 1, message: `${key} needs a machine-id (hex)` });
      else options.machineId = value;
    } else if (field === 'metadata') {
      for (const pair of value.split(/\s+/).filter(Boolean)) {
        const [k, v] = pair.split('=');
        if (!k || v === undefined) problems.push({ line: i + 1, message: `${key} needs key=value pairs` });
        else options.metadata.push([k, v]);
      }
    } else if (field === 'global') {
      if (!/^(true|false)$/.test(value)) problems.push({ line: i + 1, message: `${key} is true or false` });
      else options.global = value === 'true';
    }
  });
  return { options, problems };
}

/** fleet's globs (Go's path.Match): `*`, `?` and `[...]` classes. */
export function globMatch(pattern: string, name: string): boolean {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) return pattern === name;
      const body = pattern.slice(i + 1, end).replace(/^\^/, '!');
      re += `[${body.startsWith('!') ? `^${body.slice(1)}` : body}]`;
      i = end;
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`${re}$`).test(name);
}

/** Do two units conflict? Either one's patterns naming the other is enough, as in fleet. */
export function unitsConflict(a: UnitSpec, b: UnitSpec): boolean {
  return (
    a.fleet.conflicts.some((p) => globMatch(p, b.name)) || b.fleet.conflicts.some((p) => globMatch(p, a.name))
  );
}

/** A node as the scheduler sees it. */
export interface SchedNode {
  name: string;
  machineId: string;
  metadata: Record<string, string>;
}

export interface Schedule {
  /** unit -> the nodes it runs on (one, or every eligible one for a global unit), in node order. */
  placement: Map<string, string[]>;
  /** Units that fit nowhere, and why. */
  unplaced: { unit: string; reason: string }[];
}

/**
 * Places units on nodes as fleet would: a unit stays where it runs when that node is
 * still eligible and allowed; else it goes to the allowed node with the fewest units
 * (ties: Labfile order). `eligible` holds the nodes that are up and were not lost since
 * the last placement (a lost node's units move, as fleet moves them off a dead machine).
 */
export function scheduleUnits(
  units: readonly UnitSpec[],
  nodes: readonly SchedNode[],
  eligible: ReadonlySet<string>,
  current: ReadonlyMap<string, readonly string[]>,
): Schedule {
  const placement = new Map<string, string[]>();
  const unplaced: Schedule['unplaced'] = [];
  const load = new Map(nodes.map((n) => [n.name, 0]));
  const onNode = new Map<string, UnitSpec[]>(nodes.map((n) => [n.name, []]));
  const place = (u: UnitSpec, node: string) => {
    placement.set(u.name, [...(placement.get(u.name) ?? []), node]);
    onNode.get(node)!.push(u);
    load.set(node, load.get(node)! + 1);
  };
  const allowed = (u: UnitSpec, n: SchedNode) =>
    eligible.has(n.name) &&
    (!u.fleet.machineId || n.machineId.startsWith(u.fleet.machineId)) &&
    u.fleet.metadata.every(([k, v]) => n.metadata[k] === v) &&
    !onNode.get(n.name)!.some((other) => unitsConflict(u, other));

  // A unit that must run beside another is placed after it. First every unit that can
  // stay where it runs stays (so a move never pushes another unit off its node), then
  // the others go to the least loaded node that allows them.
  const order = [...units].sort((a, b) => depth(a, units) - depth(b, units));
  const candidatesOf = (u: UnitSpec) => {
    const ok = nodes.filter((n) => allowed(u, n));
    if (!u.fleet.machineOf) return ok;
    const beside = placement.get(u.fleet.machineOf) ?? [];
    return ok.filter((n) => beside.includes(n.name));
  };
  const rest: UnitSpec[] = [];
  for (const u of order) {
    if (u.fleet.global) {
      for (const n of candidatesOf(u)) place(u, n.name);
      continue;
    }
    const here = current.get(u.name) ?? [];
    const keep = candidatesOf(u).find((n) => here.includes(n.name));
    if (keep) place(u, keep.name);
    else rest.push(u);
  }
  for (const u of rest) {
    const candidates = candidatesOf(u);
    if (candidates.length > 0) {
      place(u, candidates.reduce((best, n) => (load.get(n.name)! < load.get(best.name)! ? n : best)).name);
      continue;
    }
    const beside = u.fleet.machineOf ? (placement.get(u.fleet.machineOf) ?? []) : undefined;
    unplaced.push({
      unit: u.name,
      reason: !beside
        ? whyNowhere(u, nodes, eligible)
        : beside.length
          ? `must run beside ${u.fleet.machineOf}, whose machine does not allow it`
          : `must run beside ${u.fleet.machineOf}, which runs nowhere`,
    });
  }
  for (const u of order)
    if (u.fleet.global && !placement.has(u.name))
      unplaced.push({ unit: u.name, reason: whyNowhere(u, nodes, eligible) });
  // Node order within each unit's list, whatever the placing order was.
  const index = new Map(nodes.map((n, i) => [n.name, i]));
  for (const list of placement.values()) list.sort((a, b) => index.get(a)! - index.get(b)!);
  return { placement, unplaced };
}

/** How many MachineOf hops lead from a unit to one that needs no other (cycles count as long). */
function depth(u: UnitSpec, units: readonly UnitSpec[], seen = new Set<string>()): number {
  if (!u.fleet.machineOf || seen.has(u.name)) return seen.has(u.name) ? units.length : 0;
  seen.add(u.name);
  const next = units.find((x) => x.name === u.fleet.machineOf);
  return next ? 1 + depth(next, units, seen) : 0;
}

function whyNowhere(u: UnitSpec, nodes: readonly SchedNode[], eligible: ReadonlySet<string>): string {
  const up = nodes.filter((n) => eligible.has(n.name));
  if (up.length === 0) return 'no node is up';
  if (u.fleet.machineId && !up.some((n) => n.machineId.startsWith(u.fleet.machineId!)))
    return `no node that is up has machine-id ${u.fleet.machineId}`;
  if (u.fleet.metadata.length && !up.some((n) => u.fleet.metadata.every(([k, v]) => n.metadata[k] === v)))
    return `no node that is up has metadata ${u.fleet.metadata.map(([k, v]) => `${k}=${v}`).join(' ')}`;
  return `every node that is up runs a unit it conflicts with (${u.fleet.conflicts.join(' ')})`;
}
