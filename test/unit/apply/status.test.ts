import { describe, expect, it } from 'vitest';
import { parseAddresses, parseDf } from '../../../lab/apply/monitor.js';
import { clusterVerdict, emptyNodeStatus, type NodeStatus } from '../../../lab/apply/status.js';
import { checkLabfileText } from '../../../lab/load.js';
import type { LabSpec } from '../../../lab/plan/model.js';
import { parseDomainList } from '../../../lab/providers/virsh.js';

function lab(): LabSpec {
  const r = checkLabfileText(
    `name: s
template: debian-12-lab
network: { mode: managed, cidr: 10.9.0.0/24 }
services: [etcd, docker]
nodes:
  - { name: a, ip: 10.9.0.2 }
  - { name: b, ip: 10.9.0.3 }
  - { name: c, ip: 10.9.0.4 }
`,
    'L',
  );
  if (!r.ok) throw new Error('fixture');
  return r.lab;
}

function node(
  l: LabSpec,
  i: number,
  etcd: 'leader' | 'follower' | 'down' | null,
  machineId: string,
): NodeStatus {
  return {
    ...emptyNodeStatus(l.nodes[i]!, 'running'),
    machineId,
    etcd: etcd ? { state: etcd, members: 3 } : null,
  };
}

describe('clusterVerdict', () => {
  it('a leader and two followers: quorum, 3 members, no duplicates', () => {
    const l = lab();
    const v = clusterVerdict(l, [
      node(l, 0, 'follower', 'a1'),
      node(l, 1, 'leader', 'b1'),
      node(l, 2, 'follower', 'c1'),
    ]);
    expect(v).toEqual({ etcdLeader: 'b', etcdMembers: 3, quorum: true, duplicateMachineIds: [] });
  });

  it('two of three down: no quorum even when one still says leader', () => {
    const l = lab();
    const v = clusterVerdict(l, [
      node(l, 0, 'leader', 'a1'),
      node(l, 1, 'down', 'b1'),
      node(l, 2, null, 'c1'),
    ]);
    expect(v.quorum).toBe(false);
  });

  it('names every node that shares a machine-id (the cloned-image bug)', () => {
    const l = lab();
    const v = clusterVerdict(l, [
      node(l, 0, 'leader', 'x'),
      node(l, 1, 'follower', 'dup'),
      node(l, 2, 'follower', 'dup'),
    ]);
    expect(v.duplicateMachineIds).toEqual(['b', 'c']);
  });
});

describe('parseDomainList', () => {
  it('reads running and shut-off domains, with the space in "shut off"', () => {
    const out = ` Id   Name      State
--------------------------
 3    coreos1   running
 -    coreos2   shut off
 -    other     paused

`;
    expect([...parseDomainList(out)]).toEqual([
      ['coreos1', 'running'],
      ['coreos2', 'shut off'],
      ['other', 'paused'],
    ]);
  });
});

describe('guest details parsers', () => {
  it('ip -o addr lines to "dev address"', () => {
    const out =
      '2: enp1s0    inet 10.77.0.11/24 brd 10.77.0.255 scope global enp1s0\\       valid_lft forever preferred_lft forever\n' +
      '3: docker0    inet 172.17.0.1/16 brd 172.17.255.255 scope global docker0\\       valid_lft forever\n';
    expect(parseAddresses(out)).toEqual(['enp1s0 10.77.0.11/24', 'docker0 172.17.0.1/16']);
  });
  it('df output to "used of size (pcent)"', () => {
    expect(parseDf(' Used  Size Use%\n 1.2G  3.9G  31%\n')).toBe('1.2G of 3.9G (31%)');
    expect(parseDf('')).toBeNull();
  });
});
