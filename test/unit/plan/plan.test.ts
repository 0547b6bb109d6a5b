import { describe, expect, it } from 'vitest';
import { checkLabfileText } from '../../../lab/spec/load.js';
import type { LabSpec } from '../../../lab/plan/model.js';
import {
  discoveryRefusal,
  isNoop,
  memberChanges,
  planLab,
  type PlannedNode,
  type ObservedNode,
} from '../../../lab/plan/plan.js';
import { renderNode } from '../../../lab/render/node.js';
import { labSpec } from '../../support/lab-spec.js';

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

  it('sets a link taken down (lab link) up again, after resuming a paused node; a node that is off is started, not linked', () => {
    const l = lab();
    const o = healthy(l);
    o.set('a', { ...o.get('a')!, linkDown: true });
    let p = planLab(l, desired(l), o, { exists: true, active: true });
    expect(p.nodes.map((n) => n.actions)).toEqual([['link-up'], []]);
    expect(p.nodes[0]!.reasons).toEqual(['its network link is down']);
    o.set('a', { ...o.get('a')!, state: 'paused' });
    p = planLab(l, desired(l), o, { exists: true, active: true });
    expect(p.nodes[0]!.actions).toEqual(['resume', 'link-up']);
    o.set('a', { ...o.get('a')!, state: 'shut off' });
    p = planLab(l, desired(l), o, { exists: true, active: true });
    expect(p.nodes[0]!.actions).toEqual(['start']);
    o.set('a', { ...o.get('a')!, state: 'running', linkDown: false });
    expect(isNoop(planLab(l, desired(l), o, { exists: true, active: true }))).toBe(true);
  });

  it('a changed tcg.tbCache redefines a TCG node (at its next start), never replaces it; unknown or KVM: nothing', () => {
    const l = lab();
    const o = healthy(l);
    o.set('a', { ...o.get('a')!, tbCacheMiB: 128 });
    o.set('b', { ...o.get('b')!, tbCacheMiB: 256 });
    const p = planLab(l, desired(l), o, { exists: true, active: true });
    expect(p.nodes.map((n) => n.actions)).toEqual([['define'], []]);
    expect(p.nodes[0]!.reasons[0]).toMatch(/TCG cache/);
    const kvm: PlannedNode[] = l.nodes.map((spec) => ({
      spec,
      configHash: `hash-${spec.name}`,
      type: 'kvm',
    }));
    const ok = healthy(l);
    for (const [k, v] of ok) ok.set(k, { ...v, type: 'kvm' });
    expect(isNoop(planLab(l, kvm, ok, { exists: true, active: true }))).toBe(true);
    expect(isNoop(planLab(l, desired(l), healthy(l), { exists: true, active: true }))).toBe(true);
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

describe('planLab: labs made before the member list left the first-boot config (schema 1)', () => {
  // Real renders: the legacy hash of a node depends on the lab's etcd members then.
  const three = labSpec({
    extra: 'services: [etcd]\n',
    nodes: '  - { name: a, ip: 10.9.0.2 }\n  - { name: b, ip: 10.9.0.3 }\n  - { name: c, ip: 10.9.0.4 }\n',
  });
  const four = labSpec({
    extra: 'services: [etcd]\n',
    nodes:
      '  - { name: a, ip: 10.9.0.2 }\n  - { name: b, ip: 10.9.0.3 }\n  - { name: c, ip: 10.9.0.4 }\n  - { name: d, ip: 10.9.0.5 }\n',
  });
  const render = (l: LabSpec) =>
    l.nodes.map((node) =>
      renderNode({
        lab: l,
        node,
        paths: { disk: '/d', console: '/c', seed: '/s' },
        secret: Buffer.alloc(32, 3),
        type: 'qemu',
      }),
    );
  /** What a lab made by the release before looks like: schema 1, the legacy hash. */
  const madeBefore = (l: LabSpec, schema?: number) =>
    new Map(
      render(l).map((d) => [
        d.spec.name,
        {
          state: 'running',
          owned: true,
          configHash: d.legacyConfigHash(),
          ...(schema ? { schema } : {}),
          memoryMiB: d.spec.memoryMiB,
          vcpus: d.spec.cpus,
          type: 'qemu',
          mac: d.spec.mac,
          uuid: d.spec.uuid,
          diskExists: true,
          seedExists: true,
        } satisfies ObservedNode,
      ]),
    );

  it('converges with nothing to do: no replace because the layout changed', () => {
    const p = planLab(three, render(three), madeBefore(three));
    expect(p.nodes.map((n) => n.actions)).toEqual([[], [], []]);
  });

  it('a fourth node joins it: the three are left alone, the new one is created', () => {
    const p = planLab(four, render(four), madeBefore(three));
    expect(p.nodes.map((n) => [n.node, n.actions.join(' ')])).toEqual([
      ['a', ''],
      ['b', ''],
      ['c', ''],
      ['d', 'create-disk write-seed define start'],
    ]);
  });

  it('a schema-2 domain must match the current hash: the legacy one means a replace', () => {
    const p = planLab(three, render(three), madeBefore(three, 2));
    expect(p.nodes.every((n) => n.actions[0] === 'replace')).toBe(true);
  });

  it('a schema-1 domain whose hash is neither layout is replaced (its first-boot config changed)', () => {
    const observed = madeBefore(three);
    observed.get('b')!.configHash = 'f'.repeat(64);
    const p = planLab(three, render(three), observed);
    expect(p.nodes.map((n) => n.actions[0] ?? 'none')).toEqual(['none', 'replace', 'none']);
  });
});

describe('memberChanges', () => {
  const l = labSpec({
    extra: 'services: [etcd]\n',
    nodes: '  - { name: a, ip: 10.9.0.2 }\n  - { name: b, ip: 10.9.0.3 }\n  - { name: c, ip: 10.9.0.4 }\n',
  });
  const d = desired(l);
  it('a fresh lab bootstraps every member', () => {
    const p = planLab(l, d, new Map());
    expect([...memberChanges(l, p, new Map())]).toEqual([
      ['a', 'bootstrap'],
      ['b', 'bootstrap'],
      ['c', 'bootstrap'],
    ]);
  });
  it('a new node beside running members joins; a changed first-boot config rebuilds that member only', () => {
    const observed = healthy(l);
    observed.delete('c');
    observed.get('b')!.configHash = 'other';
    const p = planLab(l, d, observed);
    expect([...memberChanges(l, p, observed)]).toEqual([
      ['b', 'rebuild member'],
      ['c', 'join'],
    ]);
  });
  it('a discovery bootstrap has no changes lab makes', () => {
    const disc = labSpec({
      extra: 'services: [etcd]\netcd: { bootstrap: discovery, discovery: "https://discovery.etcd.io/x" }\n',
    });
    expect(memberChanges(disc, planLab(disc, desired(disc), new Map()), new Map()).size).toBe(0);
  });
});

describe('discoveryRefusal', () => {
  const disc = labSpec({
    extra: 'services: [etcd]\netcd: { bootstrap: discovery, discovery: "https://discovery.etcd.io/x" }\n',
  });
  it('a fresh discovery lab is fine', () => {
    expect(discoveryRefusal(disc, planLab(disc, desired(disc), new Map()), new Map())).toBeUndefined();
  });
  it('a rebuild or a join in a running one is refused, naming the nodes', () => {
    const observed = healthy(disc);
    observed.get('a')!.configHash = 'other';
    expect(discoveryRefusal(disc, planLab(disc, desired(disc), observed), observed)).toMatch(
      /^etcd bootstrap discovery cannot change the members of a running cluster \(a: rebuild member\): use etcd.bootstrap static/,
    );
  });
});
