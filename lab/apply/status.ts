import { describeError } from '../errors.js';
import { GuestSession } from '../guest/ssh.js';
import { probeNode, type NodeHealth } from '../guest/probes/index.js';
import { findDuplicateMachineIds } from '../guest/probes/machine-id.js';
import { mapLimit, sshTargetFor, type LabContext } from './context.js';
import { findOwnedDomains } from './observe.js';

export interface NodeStatus {
  name: string;
  domain: string;
  state: string;
  ip: string;
  machineId: string | null;
  etcd: NodeHealth['etcd'] | null;
  docker: NodeHealth['docker'] | null;
  fleet: NodeHealth['fleet'] | null;
  lastError: string | null;
}

export interface LabStatus {
  lab: string;
  uri: string;
  nodes: NodeStatus[];
  cluster: {
    etcdLeader: string | null;
    etcdMembers: number | null;
    quorum: boolean | null;
    duplicateMachineIds: string[];
  };
}

/** One look at every node: libvirt state, then SSH probes of the running ones, in parallel. */
export async function status(ctx: LabContext, opts: { probeTimeoutMs?: number } = {}): Promise<LabStatus> {
  const owned = new Map((await findOwnedDomains(ctx)).map((d) => [d.node, d]));
  const secret = await ctx.dir.secret(false);
  const nodes = await mapLimit(ctx.lab.nodes, 16, async (node): Promise<NodeStatus> => {
    const dom = owned.get(node.name);
    const base: NodeStatus = {
      name: node.name,
      domain: node.domain,
      state: dom?.state ?? 'missing',
      ip: node.ip,
      machineId: null,
      etcd: null,
      docker: null,
      fleet: null,
      lastError: null,
    };
    if (dom?.state !== 'running') return base;
    if (!secret) return { ...base, lastError: 'the lab folder (keys) is missing: run lab up to recreate it' };
    try {
      const session = await GuestSession.connect(sshTargetFor(ctx.lab, node, secret), {
        timeoutMs: opts.probeTimeoutMs ?? 8000,
      });
      try {
        const h = await probeNode(session, {
          services: node.services,
          fleet: 'fleet' in node.template.services,
          load: true,
        });
        return {
          ...base,
          machineId: h.machineId ?? null,
          etcd: h.etcd ?? null,
          docker: h.docker ?? null,
          fleet: h.fleet ?? null,
          lastError: h.lastError ?? null,
        };
      } finally {
        session.close();
      }
    } catch (err) {
      return { ...base, lastError: `unreachable: ${describeError(err)}` };
    }
  });
  const etcdNodes = nodes.filter((n) => n.etcd && (n.etcd.state === 'leader' || n.etcd.state === 'follower'));
  const leader = nodes.find((n) => n.etcd?.state === 'leader');
  const expected = ctx.lab.nodes.filter((n) => n.services.includes('etcd')).length;
  const dups = findDuplicateMachineIds(
    new Map(nodes.filter((n) => n.machineId).map((n) => [n.name, n.machineId!])),
  );
  return {
    lab: ctx.lab.name,
    uri: ctx.virsh.uri,
    nodes,
    cluster: {
      etcdLeader: leader?.name ?? null,
      etcdMembers: etcdNodes.length ? Math.max(...etcdNodes.map((n) => n.etcd!.members ?? 0)) : null,
      quorum: expected ? etcdNodes.length > expected / 2 && leader !== undefined : null,
      duplicateMachineIds: [...dups.keys()],
    },
  };
}
