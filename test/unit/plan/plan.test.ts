import { describe, expect, it } from 'vitest';
import { checkLabfileText } from '../../../lab/spec/load.js';
import type { LabSpec } from '../../../lab/plan/model.js';
import { isNoop, planLab, type PlannedNode, type ObservedNode } from '../../../lab/plan/plan.js';

function lab(): LabSpec {
  const r = checkLabfileText(
    `name: p
template: debian-12-lab
network: { mode: managed, cidr: 10.9.0.0/24 }
nodes:
  - { name: a, ip: 10.9.0.2 }
  - { name: b, ip: 10.9.0.3 }
`,
    'L',
  );
  if (!r.ok) throw new Error('fixture');
  return r.lab;
}

const desired = (l: LabSpec): PlannedNode[] =>
  l.nodes.map((spec) => ({ spec, configHash: `hash-${spec.name}`, type: 'qemu' }));
const healthy = (l: LabSpec): Map<string, ObservedNode> =>
  new Map(
    l.nodes.map((n) => [
      n.name,
      {
        state: 'running',
        owned: true,
        configHash: `hash-${n.name}`,
        memoryMiB: n.memoryMiB,
        vcpus: n.cpus,
        type: 'qemu',
        mac: n.mac,
        uuid: n.uuid,
        diskExists: true,
        seedExists: true,
      },
    ]),
  );

describe('planLab', () => {
  it('is a no-op for a lab that matches', () => {
    const l = lab();
    const p = planLab(l, desired(l), healthy(l), { exists: true, active: true });
    expect(isNoop(p)).toBe(true);
  });

  it('creates everything for a fresh lab, network first', () => {
    const l = lab();
    const p = planLab(l, desired(l), new Map(), { exists: false, active: false });
    expect(p.network).toEqual(['define-network', 'start-network']);
    expect(p.nodes.map((n) => n.actions)).toEqual([
      ['create-disk', 'write-seed', 'define', 'start'],
      ['create-disk', 'write-seed', 'define', 'start'],
    ]);
  });

  it('restarts exactly the node that was shut off and leaves the other alone', () => {
    const l = lab();
    const o = healthy(l);
    o.set('b', { ...o.get('b')!, state: 'shut off' });
    const p = planLab(l, desired(l), o, { exists: true, active: true });
    expect(p.nodes.map((n) => n.actions)).toEqual([[], ['start']]);
  });

  it('resumes a paused node (a checkpoint save or restore cut short), never starts it', () => {
    const l = lab();
    const o = healthy(l);
    o.set('a', { ...o.get('a')!, state: 'paused' });
    const p = planLab(l, desired(l), o, { exists: true, active: true });
    expect(p.nodes.map((n) => n.actions)).toEqual([['resume'], []]);
    expect(p.nodes[0]!.reasons).toEqual(['domain is paused']);
  });

  it('re-defines an undefined node on its kept disk', () => {
    const l = lab();
    const o = healthy(l);
    o.set('a', { state: 'missing', owned: false, diskExists: true, seedExists: true });
    const p = planLab(l, desired(l), o, { exists: true, active: true });
    expect(p.nodes[0]!.actions).toEqual(['write-seed', 'define', 'start']);
    expect(p.nodes[1]!.actions).toEqual([]);
  });

  it('plans a changed first-boot config as a visible replace', () => {
    const l = lab();
    const o = healthy(l);
    o.set('a', { ...o.get('a')!, configHash: 'old' });
    const p = planLab(l, desired(l), o, { exists: true, active: true });
    expect(p.nodes[0]!.actions[0]).toBe('replace');
    expect(p.nodes[0]!.reasons[0]).toContain('provisioning config changed');
  });

  it('refuses a same-named domain that the lab does not own', () => {
    const l = lab();
    const o = healthy(l);
    o.set('a', { state: 'running', owned: false, diskExists: false, seedExists: false });
    const p = planLab(l, desired(l), o, { exists: true, active: true });
    expect(p.nodes[0]!.actions).toEqual([]);
    expect(p.nodes[0]!.conflict).toContain('does not belong to lab p');
    expect(isNoop(p)).toBe(false);
  });

  it('redefines when memory changed, keeping the disk', () => {
    const l = lab();
    const o = healthy(l);
    o.set('a', { ...o.get('a')!, memoryMiB: 512 });
    expect(planLab(l, desired(l), o).nodes[0]!.actions).toEqual(['define']);
  });
});
