/**
 * Phase 5 of `lab up`: lab-wide checks once the nodes are healthy. etcd's members settle
 * on one leader (the verdict `lab status` shows), a write on one node reads back on
 * another, and no two nodes share a machine-id.
 */
import type { GuestLink } from '../guest/agent.js';
import { etcdGet, etcdPut, probeEtcd, type EtcdHealth } from '../guest/probes/etcd.js';
import { findDuplicateMachineIds } from '../guest/probes/machine-id.js';
import { GuestSession } from '../guest/ssh.js';
import type { DesiredNode } from '../render/node.js';
import { pollUntil } from '../runtime/poll.js';
import { sshTargetFor, type LabContext } from './context.js';
import type { NodeResult } from './converge-node.js';
import { emptyNodeStatus } from './status.js';
import { clusterVerdict, etcdSettled, type ClusterVerdict } from './verdict.js';

/** What the lab-wide checks found. */
export interface ClusterCheck {
  etcdLeader?: string;
  etcdMembers?: number;
  replicated?: boolean;
  machineIdsDistinct?: boolean;
  problems: string[];
}

/** Lab-wide checks: one etcd leader, a write replicated across nodes, distinct machine-ids. */
export async function checkCluster(
  ctx: LabContext,
  desired: DesiredNode[],
  results: NodeResult[],
  secret: Buffer,
  open: Map<string, GuestLink>,
): Promise<ClusterCheck> {
  const problems: string[] = [];
  const healthy = results.filter((r) => r.ok && r.health);
  const ids = new Map(healthy.map((r) => [r.node, r.health!.machineId!]));
  const dups = findDuplicateMachineIds(ids);
  for (const [id, nodes] of dups)
    problems.push(`machine-id ${id} is shared by ${nodes.join(', ')}: cloned identity breaks clustering`);
  const cluster: ClusterCheck = { machineIdsDistinct: dups.size === 0, problems };
  const etcdNodes = desired.filter(
    (d) => d.spec.services.includes('etcd') && healthy.some((r) => r.node === d.spec.name),
  );
  if (etcdNodes.length === 0) return cluster;
  const sessions: GuestLink[] = await Promise.all(
    etcdNodes.map((d) => {
      const kept = open.get(d.spec.name);
      return kept
        ? Promise.resolve(kept)
        : GuestSession.connect(sshTargetFor(ctx.lab, d.spec, secret), { timeoutMs: 60_000 });
    }),
  );
  try {
    const verdictOf = (health: readonly EtcdHealth[]): ClusterVerdict =>
      clusterVerdict(
        ctx.lab,
        etcdNodes.map((d, i) => ({ ...emptyNodeStatus(d.spec, 'running'), etcd: health[i] ?? null })),
      );
    // Nodes that came up were checked one by one as they did; the leader may have moved
    // since. Look at all members at once until they settle. When no etcd node changed,
    // their node checks ran side by side a moment ago: if those settle, they are the
    // first look (the write and read below still need a working quorum).
    const side = etcdNodes.map((d) => results.find((r) => r.node === d.spec.name)!);
    const unchanged = side.every((r) => r.actions.length === 0 && r.health?.etcd);
    const first = unchanged ? verdictOf(side.map((r) => r.health!.etcd!)) : undefined;
    const settled =
      (first && etcdSettled(first) ? first : undefined) ??
      (await pollUntil(
        async () => {
          const v = verdictOf(await Promise.all(sessions.map((s) => probeEtcd(s))));
          return etcdSettled(v) ? v : undefined;
        },
        {
          deadlineMs: 120_000,
          initialMs: 500,
          factor: 1.5,
          maxMs: 5000,
          ...(ctx.signal ? { signal: ctx.signal } : {}),
          describe: 'etcd leader agreement',
        },
      ).catch(() => undefined));
    if (!settled) {
      problems.push('etcd members did not agree on one leader within 120 s');
      return cluster;
    }
    cluster.etcdLeader = settled.etcdLeader!;
    cluster.etcdMembers = settled.etcdMembers!;
    const expected = ctx.lab.nodes.filter((n) => n.services.includes('etcd')).length;
    if (cluster.etcdMembers !== expected)
      problems.push(`etcd has ${cluster.etcdMembers} members, expected ${expected}`);
    cluster.replicated = await writeAndReadBack(etcdNodes, sessions);
    if (!cluster.replicated) {
      const [from, to] = [etcdNodes[0]!, etcdNodes[1] ?? etcdNodes[0]!].map((d) => d.spec.name);
      problems.push(`etcd: /message written on ${from} was not readable on ${to}`);
    }
  } finally {
    for (const s of sessions) if (!open.has(s.node)) s.close();
  }
  return cluster;
}

/** The classic check: write on one node, read it back on another. */
async function writeAndReadBack(etcdNodes: DesiredNode[], sessions: GuestLink[]): Promise<boolean> {
  const [a, b] = [sessions[0]!, sessions[1] ?? sessions[0]!];
  const value = `Hello from ${etcdNodes[0]!.spec.name}`;
  await etcdPut(a, '/message', value);
  const got = await pollUntil(async () => ((await etcdGet(b, '/message')) === value ? true : undefined), {
    deadlineMs: 30_000,
    initialMs: 200,
    factor: 1.5,
    maxMs: 2000,
    describe: 'etcd replication',
  }).catch(() => false);
  return got === true;
}
