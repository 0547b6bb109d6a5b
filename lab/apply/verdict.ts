/**
 * The one verdict on a lab's cluster, from the nodes' last looks: `lab status` shows it
 * (table, TUI and JSON) and `lab up` waits for it. Pure.
 */
import type { EtcdHealth } from '../guest/probes/etcd.js';
import { findDuplicateMachineIds } from '../guest/probes/machine-id.js';
import type { LabSpec } from '../plan/model.js';
import type { NodeStatus } from './status.js';

export interface ClusterVerdict {
  /** The node whose etcd says it leads. */
  etcdLeader: string | null;
  /** How many members the cluster has, as its leader and followers count them. */
  etcdMembers: number | null;
  /** More than half of the Labfile's etcd nodes are leader or follower, and one leads. */
  quorum: boolean | null;
  /**
   * Every etcd member that answered is a leader or a follower, exactly one leads, and all
   * name the same leader (no election half seen, no stale leader). Null when the lab has no etcd.
   */
  agreed: boolean | null;
  /** The nodes that share a machine-id with another node, sorted by id then name. */
  duplicateMachineIds: string[];
}

/** The lab-wide verdict from the nodes' last looks: etcd leader, members, quorum, agreement, cloned ids. */
export function clusterVerdict(lab: LabSpec, nodes: readonly NodeStatus[]): ClusterVerdict {
  const etcdNodes = nodes.filter((n) => n.etcd && (n.etcd.state === 'leader' || n.etcd.state === 'follower'));
  const leader = nodes.find((n) => n.etcd?.state === 'leader');
  const expected = lab.nodes.filter((n) => n.services.includes('etcd')).length;
  const dups = findDuplicateMachineIds(
    new Map(nodes.filter((n) => n.machineId).map((n) => [n.name, n.machineId!])),
  );
  const answered = nodes.flatMap((n) => (n.etcd ? [n.etcd] : []));
  return {
    etcdLeader: leader?.name ?? null,
    etcdMembers: etcdNodes.length ? Math.max(...etcdNodes.map((n) => n.etcd!.members ?? 0)) : null,
    quorum: expected ? etcdNodes.length > expected / 2 && leader !== undefined : null,
    agreed: expected ? etcdAgreement(answered) !== undefined : null,
    duplicateMachineIds: [...dups.values()].flat(),
  };
}

/** What `lab up` waits for: a quorum whose members agree on one leader. */
export function etcdSettled(verdict: ClusterVerdict): boolean {
  return verdict.quorum === true && verdict.agreed === true;
}

/**
 * The members' answers when they agree: one leader, every member a leader or follower,
 * all naming the same leader. Else undefined.
 */
export function etcdAgreement(all: readonly EtcdHealth[]): readonly EtcdHealth[] | undefined {
  const leaders = new Set(all.map((h) => h.leaderId));
  const leading = all.filter((h) => h.state === 'leader');
  return all.length > 0 &&
    leaders.size === 1 &&
    leading.length === 1 &&
    all.every((h) => h.state === 'leader' || h.state === 'follower')
    ? all
    : undefined;
}
