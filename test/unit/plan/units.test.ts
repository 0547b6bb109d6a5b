import { describe, expect, it } from 'vitest';
import {
  globMatch,
  parseFleetOptions,
  scheduleUnits,
  unitsConflict,
  type SchedNode,
  type UnitSpec,
} from '../../../lab/plan/units.js';

/** The walkthrough's apache unit (its [X-Fleet] section as written there). */
const APACHE = `[Unit]
Description=My Apache Frontend
After=docker.service
Requires=docker.service

[Service]
ExecStart=/usr/bin/docker run -name apache -p 80:80 coreos/apache /usr/sbin/apache2ctl -D FOREGROUND
ExecStop=/usr/bin/docker stop apache

[X-Fleet]
X-Conflicts=apache.*.service
`;

function unit(name: string, fleet: string = ''): UnitSpec {
  const content = `[Service]\nExecStart=/bin/true\n${fleet ? `[X-Fleet]\n${fleet}\n` : ''}`;
  return { name, content, hash: name, fleet: parseFleetOptions(content).options };
}
const nodes: SchedNode[] = ['coreos1', 'coreos2', 'coreos3'].map((name, i) => ({
  name,
  machineId: `${i + 1}`.repeat(32),
  metadata: { node: name, role: i === 0 ? 'edge' : 'core' },
}));
const all = new Set(nodes.map((n) => n.name));
const plain = (s: ReturnType<typeof scheduleUnits>) => Object.fromEntries(s.placement);

describe('parseFleetOptions', () => {
  it("reads the walkthrough's X-Conflicts", () => {
    expect(parseFleetOptions(APACHE)).toEqual({
      options: { conflicts: ['apache.*.service'], metadata: [], global: false },
      problems: [],
    });
  });
  it('reads old and new key names; other sections are not its business', () => {
    const r = parseFleetOptions(
      '[Service]\nConflicts=not-fleet\n[X-Fleet]\nConflicts=a.service b.*\nMachineOf=db.service\nMachineMetadata=role=core region=x\nMachineID=abc\nGlobal=false\n',
    );
    expect(r.problems).toEqual([]);
    expect(r.options).toEqual({
      conflicts: ['a.service', 'b.*'],
      machineOf: 'db.service',
      machineId: 'abc',
      metadata: [
        ['role', 'core'],
        ['region', 'x'],
      ],
      global: false,
    });
  });
  it('names the line of an unknown key or a bad value', () => {
    expect(parseFleetOptions('[X-Fleet]\n\nX-Conflict=a\nGlobal=yes\n').problems).toEqual([
      { line: 3, message: expect.stringMatching(/^unknown \[X-Fleet\] key X-Conflict /) as string },
      { line: 4, message: 'Global is true or false' },
    ]);
  });
});

describe('globMatch and conflicts', () => {
  it.each([
    ['apache.*.service', 'apache.1.service', true],
    ['apache.*.service', 'apache.service', false],
    ['apache.?.service', 'apache.12.service', false],
    ['web[12].service', 'web2.service', true],
    ['web[!12].service', 'web3.service', true],
    ['web[!12].service', 'web1.service', false],
    ['a+b.service', 'a+b.service', true],
    ['a+b.service', 'aab.service', false],
  ])('%s ~ %s: %s', (p, n, want) => {
    expect(globMatch(p, n)).toBe(want);
  });
  it('a conflict declared by either side counts', () => {
    const a = unit('apache.1.service', 'X-Conflicts=apache.*.service');
    expect(unitsConflict(a, unit('apache.2.service'))).toBe(true);
    expect(unitsConflict(unit('apache.2.service'), a)).toBe(true);
    expect(unitsConflict(a, unit('hello.service'))).toBe(false);
  });
});

describe('scheduleUnits', () => {
  const hello = unit('hello.service');
  const a1 = unit('apache.1.service', 'X-Conflicts=apache.*.service');
  const a2 = unit('apache.2.service', 'X-Conflicts=apache.*.service');

  it('spreads conflicting replicas over different machines, the least loaded first', () => {
    const s = scheduleUnits([hello, a1, a2], nodes, all, new Map());
    expect(plain(s)).toEqual({
      'hello.service': ['coreos1'],
      'apache.1.service': ['coreos2'],
      'apache.2.service': ['coreos3'],
    });
    expect(s.unplaced).toEqual([]);
  });

  it('keeps units where they run (a re-run moves nothing)', () => {
    const current = new Map([
      ['hello.service', ['coreos3']],
      ['apache.1.service', ['coreos1']],
      ['apache.2.service', ['coreos3']],
    ]);
    expect(plain(scheduleUnits([hello, a1, a2], nodes, all, current))).toEqual({
      'hello.service': ['coreos3'],
      'apache.1.service': ['coreos1'],
      'apache.2.service': ['coreos3'],
    });
  });

  it('moves the units of a lost node to the others, never beside a conflicting one', () => {
    const current = new Map([
      ['hello.service', ['coreos1']],
      ['apache.1.service', ['coreos2']],
      ['apache.2.service', ['coreos3']],
    ]);
    const s = scheduleUnits([hello, a1, a2], nodes, new Set(['coreos1', 'coreos3']), current);
    expect(plain(s)).toEqual({
      'hello.service': ['coreos1'],
      'apache.1.service': ['coreos1'],
      'apache.2.service': ['coreos3'],
    });
  });

  it('says why a unit fits nowhere', () => {
    const a3 = unit('apache.3.service', 'X-Conflicts=apache.*.service');
    const s = scheduleUnits([a1, a2, a3], nodes, new Set(['coreos1', 'coreos2']), new Map());
    expect(s.unplaced).toEqual([
      {
        unit: 'apache.3.service',
        reason: 'every node that is up runs a unit it conflicts with (apache.*.service)',
      },
    ]);
    expect(scheduleUnits([hello], nodes, new Set(), new Map()).unplaced).toEqual([
      { unit: 'hello.service', reason: 'no node is up' },
    ]);
  });

  it('co-locates MachineOf units, whatever their order; follows metadata, machine-id and Global', () => {
    const side = unit('side.service', 'X-ConditionMachineOf=db.service');
    const db = unit('db.service', 'MachineMetadata=role=core');
    const pinned = unit('pinned.service', `MachineID=${'3'.repeat(8)}`);
    const agent = unit('agent.service', 'Global=true\nMachineMetadata=role=core');
    const s = scheduleUnits([side, db, pinned, agent], nodes, all, new Map());
    expect(plain(s)).toEqual({
      'db.service': ['coreos2'],
      'side.service': ['coreos2'],
      'pinned.service': ['coreos3'],
      'agent.service': ['coreos2', 'coreos3'],
    });
    const lonely = scheduleUnits([side], nodes, all, new Map());
    expect(lonely.unplaced).toEqual([
      { unit: 'side.service', reason: 'must run beside db.service, which runs nowhere' },
    ]);
  });
});
