import type { Exec, ExecResult } from './exec.js';

/** A row of `fleetctl list-machines`. */
export interface FleetMachine {
  /** The machine-id, or its first 8 digits when listed without `-l`. */
  id: string;
  /** True when fleetctl shortened the id (`deb19cd2...`). */
  truncated: boolean;
  ip: string;
  metadata: Record<string, string>;
}

/** A row of `fleetctl list-units`. Columns fleetctl printed `-` for are absent. */
export interface FleetUnit {
  unit: string;
  load?: string;
  active?: string;
  sub?: string;
  desc?: string;
  /** The machine the unit is scheduled on (id, possibly truncated), and its IP. */
  machineId?: string;
  machineIp?: string;
}

export interface FleetHealth {
  machines: FleetMachine[];
  units: FleetUnit[];
  error?: string;
}

/**
 * Splits a fleetctl table into rows keyed by the lowercased header. fleetctl pads columns
 * with Go's tabwriter; copies of its output (the walkthrough) have spaces instead of tabs,
 * and cells contain single spaces ("My Apache Frontend"), so cells are cut at the header's
 * column starts. Pure.
 */
export function parseFleetTable(text: string): Record<string, string>[] {
  const lines = text.split('\n').map((l) => expandTabs(l.replace(/\r$/, '')));
  const headerAt = lines.findIndex((l) => /^[A-Z]+(\s+[A-Z]+)*\s*$/.test(l.trim()) && l.trim() !== '');
  if (headerAt < 0) return [];
  const header = lines[headerAt]!;
  const columns = [...header.matchAll(/\S+/g)].map((m) => ({ name: m[0].toLowerCase(), start: m.index }));
  return lines.slice(headerAt + 1).flatMap((line) => {
    if (!line.trim()) return [];
    const row: Record<string, string> = {};
    columns.forEach((col, i) => {
      const end = columns[i + 1]?.start ?? line.length;
      row[col.name] = line.slice(col.start, end).trim();
    });
    return [row];
  });
}

/** Tabs to spaces at 8-column stops, as a terminal shows fleetctl's tab-padded output. */
function expandTabs(line: string): string {
  let out = '';
  for (const ch of line) out += ch === '\t' ? ' '.repeat(8 - (out.length % 8)) : ch;
  return out;
}

function dash(value: string | undefined): string | undefined {
  return value === undefined || value === '' || value === '-' ? undefined : value;
}

/** Parses `fleetctl list-machines [-l]`. Pure. */
export function parseFleetMachines(text: string): FleetMachine[] {
  return parseFleetTable(text).map((row) => {
    const raw = row.machine ?? '';
    const metadata: Record<string, string> = {};
    for (const pair of (dash(row.metadata) ?? '').split(',')) {
      const eq = pair.indexOf('=');
      if (eq > 0) metadata[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
    }
    return { id: raw.replace(/\.\.\.$/, ''), truncated: raw.endsWith('...'), ip: row.ip ?? '', metadata };
  });
}

/** Parses `fleetctl list-units [-l]`; MACHINE is `id.../ip` or `-`. Pure. */
export function parseFleetUnits(text: string): FleetUnit[] {
  return parseFleetTable(text).map((row) => {
    const unit: FleetUnit = { unit: row.unit ?? '' };
    for (const key of ['load', 'active', 'sub', 'desc'] as const) {
      const v = dash(row[key]);
      if (v !== undefined) unit[key] = v;
    }
    const machine = dash(row.machine);
    if (machine) {
      const [id, ip] = machine.split('/');
      unit.machineId = id!.replace(/\.\.\.$/, '');
      if (ip) unit.machineIp = ip;
    }
    return unit;
  });
}

function failure(result: ExecResult): string {
  const text = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-3).join(' | ');
  return `exit code ${result.code}${text ? `: ${text}` : ''}`;
}

/** fleet's view of the cluster, or `absent` when the image has no fleetctl (Debian 12 has none). */
export async function probeFleet(exec: Exec): Promise<FleetHealth | 'absent'> {
  const which = await exec.exec(['sh', '-c', 'command -v fleetctl'], { timeoutMs: 10_000 });
  if (which.code !== 0) return 'absent';
  const [machines, units] = await Promise.all([
    exec.exec(['fleetctl', 'list-machines', '-l'], { timeoutMs: 20_000 }),
    exec.exec(['fleetctl', 'list-units', '-l'], { timeoutMs: 20_000 }),
  ]);
  const health: FleetHealth = { machines: [], units: [] };
  const errors: string[] = [];
  if (machines.code === 0) health.machines = parseFleetMachines(machines.stdout);
  else errors.push(`list-machines: ${failure(machines)}`);
  if (units.code === 0) health.units = parseFleetUnits(units.stdout);
  else errors.push(`list-units: ${failure(units)}`);
  if (errors.length) health.error = errors.join('; ');
  return health;
}
