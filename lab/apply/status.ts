import { describeError } from '../errors.js';
import type { GuestLink } from '../guest/agent.js';
import { probeNode, type NodeHealth } from '../guest/probes/index.js';
import { linkState } from '../providers/drills.js';
import { mapLimit } from '../runtime/limit.js';
import { sshTargetFor, type LabContext } from './context.js';
import { labAgent, openLink } from './links.js';
import { clusterVerdict, type ClusterVerdict } from './verdict.js';
import { readCheckpoints } from '../store/checkpoints.js';
import type { NodeSpec } from '../plan/model.js';

/** One node as `lab status` reports it (`--json`): libvirt's state plus its last probe, or why none. */
export interface NodeStatus {
  name: string;
  domain: string;
  state: string;
  /** The NIC's link as libvirt has it (`lab link`); null when the node is not running. */
  link: 'up' | 'down' | null;
  ip: string;
  machineId: string | null;
  etcd: NodeHealth['etcd'] | null;
  docker: NodeHealth['docker'] | null;
  fleet: NodeHealth['fleet'] | null;
  /** `/proc/loadavg`'s 1, 5 and 15 minute averages, `0.52 0.58 0.59`. */
  load: string | null;
  /** From `/proc/meminfo`. */
  memory: { totalMiB: number; availableMiB: number } | null;
  lastError: string | null;
}

export interface LabStatus {
  lab: string;
  uri: string;
  nodes: NodeStatus[];
  cluster: ClusterVerdict;
  /** The checkpoint the lab was last restored from, and when (absent: never restored). */
  restored?: { checkpoint: string; at: string; nodes?: string[] };
}

/** A node known only by its libvirt state: nothing probed. */
export function emptyNodeStatus(node: NodeSpec, state: string): NodeStatus {
  return {
    name: node.name,
    domain: node.domain,
    state,
    link: null,
    ip: node.ip,
    machineId: null,
    etcd: null,
    docker: null,
    fleet: null,
    load: null,
    memory: null,
    lastError: null,
  };
}

/** A running node whose link is down: not probed (nothing can answer). */
export function linkDown(base: NodeStatus): NodeStatus {
  return {
    ...base,
    link: 'down',
    lastError: `its network link is down (lab link ${base.name} up, or lab up, sets it up)`,
  };
}

/** A node's status from one probe of it. */
export function nodeStatusFrom(
  node: NodeSpec,
  state: string,
  h: NodeHealth,
  link: NodeStatus['link'] = null,
): NodeStatus {
  return {
    ...emptyNodeStatus(node, state),
    link,
    machineId: h.machineId ?? null,
    etcd: h.etcd ?? null,
    docker: h.docker ?? null,
    fleet: h.fleet ?? null,
    load: h.load ?? null,
    memory: h.memory ?? null,
    lastError: h.lastError ?? null,
  };
}

/**
 * How long one look waits for an SSH connection to a node it has none to: a node that is
 * booting (or cut off) must not hold the whole answer for long. A node already connected
 * (the connection agent keeps them) is probed on its connection, without a handshake.
 */
export const STATUS_CONNECT_MS = 3_000;

/**
 * One look at every node: libvirt states (one `virsh list`), then SSH probes of the running
 * ones, in parallel. Nodes are found by domain name here: a foreign domain of that name
 * cannot pass the probe, as its host key would not be the one the lab pinned.
 * `probeTimeoutMs`: the connection's deadline (default STATUS_CONNECT_MS).
 */
export async function status(ctx: LabContext, opts: { probeTimeoutMs?: number } = {}): Promise<LabStatus> {
  const [states, secret, book] = await Promise.all([
    ctx.virsh.listDomainStates(),
    ctx.dir.secret(false),
    readCheckpoints(ctx.dir.private),
  ]);
  const timeoutMs = opts.probeTimeoutMs ?? STATUS_CONNECT_MS;
  // Through the lab's connection agent when it runs (or can start): no handshake per look.
  const agent = secret ? await labAgent(ctx.dir.private) : undefined;
  try {
    const nodes = await mapLimit(ctx.lab.nodes, 16, async (node): Promise<NodeStatus> => {
      const base = emptyNodeStatus(node, states.get(node.domain) ?? 'missing');
      if (base.state !== 'running') return base;
      // A link taken down (lab link) is libvirt's to say at once, not an SSH timeout's.
      const nic = (await linkState(ctx.virsh, node.domain, node.mac)) ?? null;
      if (nic === 'down') return linkDown(base);
      base.link = nic;
      if (!secret)
        return { ...base, lastError: 'the lab folder (keys) is missing: run lab up to recreate it' };
      const target = sshTargetFor(ctx.lab, node, secret);
      let link: GuestLink | undefined;
      try {
        link = await openLink(agent, target, timeoutMs);
        const h = await probeNode(link, {
          services: node.services,
          fleet: 'fleet' in node.template.services,
          load: true,
        });
        return nodeStatusFrom(node, base.state, h, base.link);
      } catch (err) {
        return { ...base, lastError: `unreachable: ${describeError(err)}` };
      } finally {
        link?.close();
      }
    });
    const r = book.restored;
    return {
      lab: ctx.lab.name,
      uri: ctx.virsh.uri,
      nodes,
      cluster: clusterVerdict(ctx.lab, nodes),
      ...(r ? { restored: { checkpoint: r.name, at: r.at, ...(r.nodes ? { nodes: r.nodes } : {}) } } : {}),
    };
  } finally {
    agent?.close();
  }
}
