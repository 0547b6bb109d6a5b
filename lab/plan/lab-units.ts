import type { PathKey } from '../labfile/parse.js';
import type { Labfile } from '../labfile/schema.js';
import { sha256 } from './hash.js';
import type { NodeSpec } from './model.js';
import type { Report } from './report.js';
import { UNIT_NAME_RE, parseFleetOptions, type UnitSpec } from './units.js';

/** The Labfile's units, expanded (count) and checked: names, [X-Fleet] options, references. */
export function resolveUnits(labfile: Labfile, nodes: NodeSpec[], report: Report): UnitSpec[] {
  const { source, issues } = report;
  const at = (path: PathKey[], message: string) => issues.push(source.issueAt(path, message));
  const units: UnitSpec[] = [];
  const where = new Map<string, PathKey[]>();
  // A unit of a node's own services (etcd.service) is lab's to manage, not the user's.
  const serviceUnits = new Set(nodes.flatMap((n) => Object.values(n.template.services).map((s) => s.unit)));
  (labfile.units ?? []).forEach((u, k) => {
    const path = ['units', k];
    const names = u.count
      ? Array.from({ length: u.count }, (_, i) => u.name.replaceAll('{n}', String(i + 1)))
      : [u.name];
    if (u.count && !u.name.includes('{n}'))
      at([...path, 'name'], `a unit with count needs {n} in its name, such as apache.{n}.service`);
    if (!u.count && u.name.includes('{n}')) at([...path, 'name'], `{n} in a unit name needs count`);
    const { options, problems } = parseFleetOptions(u.content);
    for (const p of problems)
      issues.push(source.issueAt([...path, 'content'], `${names[0]}: ${p.message}`, { lineInBlock: p.line }));
    for (const name of new Set(names)) {
      if (!name.includes('{n}') && !UNIT_NAME_RE.test(name))
        at([...path, 'name'], `unit name ${name} is not a systemd service name`);
      if (where.has(name)) at([...path, 'name'], `unit ${name} is listed twice`);
      if (serviceUnits.has(name))
        at([...path, 'name'], `unit ${name} is a service lab configures itself (services:)`);
      where.set(name, path);
      units.push({ name, content: u.content, hash: sha256(u.content), fleet: options });
    }
  });
  for (const u of units) {
    const of = u.fleet.machineOf;
    if (of && !where.has(of))
      at(
        [...where.get(u.name)!, 'content'],
        `${u.name} must run beside ${of}, which is not a unit of this lab`,
      );
    if (of === u.name) at([...where.get(u.name)!, 'content'], `${u.name} cannot run beside itself`);
  }
  return units;
}
