/**
 * etcd's member list as a lab operation (issue 18): never part of a node's first-boot
 * config, written by lab over SSH before the node's etcd first starts.
 * - Bootstrap: a lab's first etcd members meet through the static list of all of them.
 * - Join: a node that finds a running cluster is added as a learner through a healthy
 *   member, boots `existing`, and is promoted once it has caught up; a failed join takes
 *   the learner out again.
 * - Rebuild: before a member's disk is re-created, leadership moves off it and it is
 *   removed; the fresh node then joins. Changes run one at a time (the lab's member lock,
 *   held from the removal to the promotion), each refused before anything is touched when
 *   the members that stay could not keep the quorum.
 */
import { LabError, NodeError, describeError } from '../errors.js';
import type { GuestLink } from '../guest/agent.js';
import {
  learnerBehind,
  memberAdd,
  memberList,
  memberPromote,
  memberRemove,
  moveLeader,
} from '../guest/etcd-admin.js';
import { probeEtcdApi, type EtcdMember } from '../guest/probes/etcd.js';
import type { LabSpec, NodeSpec } from '../plan/model.js';
import { bootstrapMembership, membershipFile, peerUrl, type EtcdMembership } from '../render/etcd.js';
import { pollUntil } from '../runtime/poll.js';
import { sleep } from '../runtime/clock.js';

/** What reaching a node's etcd needs: its name (its host key) and its address. */
export type Reachable = Pick<NodeSpec, 'name' | 'ip'>;

/** One lab run's membership work: the lock that keeps changes one at a time, and the peers. */
export interface MemberRun {
  /** Runs `fn` alone among the run's membership changes. */
  serial: Serial;
  /** A link to another node, when it answers within a few seconds; undefined otherwise. */
  linkTo: (node: Reachable) => Promise<GuestLink | undefined>;
  /** Nodes the Labfile no longer names that may still be members (they are leaving). */
  leaving: readonly Reachable[];
  /**
   * How long a change waits for the members that stay to answer as healthy before it is
   * refused (default 60 s): a member just rebuilt or promoted may take seconds on TCG.
   */
  settleMs?: number;
  /**
   * Other etcd nodes that were healthy members before this run and are not re-created by
   * it: when none of them answers, a node without a membership must not bootstrap a new
   * cluster beside theirs.
   */
  expectedPeers: readonly string[];
  /**
   * No etcd node of the lab existed before this run (every one gets a fresh disk): the
   * members bootstrap together, nobody is asked.
   */
  fresh: boolean;
  /** Nodes re-created in this run whose old member was already removed (they hold the lock). */
  removed: Map<string, () => void>;
  signal?: AbortSignal;
}

/** A promise chain: each task starts when the one before it has ended. */
export class Serial {
  private tail: Promise<unknown> = Promise.resolve();
  /** Waits for its turn; returns the function that ends the turn. */
  async turn(): Promise<() => void> {
    let end!: () => void;
    const mine = new Promise<void>((r) => (end = r));
    const before = this.tail;
    this.tail = before.then(() => mine);
    await before;
    return end;
  }
}

export type MembershipOutcome = 'not-a-member' | 'present' | 'bootstrap' | 'joined';

const etcdNodes = (lab: LabSpec) => lab.nodes.filter((n) => n.services.includes('etcd'));

/**
 * Makes sure the node's etcd has its membership written, deciding it when it has none.
 * Runs once the node answers SSH, before its services are waited for.
 */
export async function ensureMembership(
  lab: LabSpec,
  node: NodeSpec,
  link: GuestLink,
  run: MemberRun,
  deadlineMs: number,
): Promise<MembershipOutcome> {
  if (!node.services.includes('etcd') || lab.etcd.bootstrap === 'discovery') return 'not-a-member';
  const file = membershipFile(lab, node, bootstrapMembership(lab));
  if (await exists(link, file.path)) {
    run.removed.get(node.name)?.();
    return 'present';
  }
  if (run.fresh) {
    await writeMembership(lab, node, link, bootstrapMembership(lab));
    return 'bootstrap';
  }
  const held = run.removed.get(node.name);
  const end = held ?? (await run.serial.turn());
  try {
    const peer = await answeringPeer(lab, node, run);
    if (!peer) {
      if (run.expectedPeers.length > 0)
        throw new NodeError(
          node.name,
          'member',
          `no etcd member of the lab answers (${run.expectedPeers.join(', ')} ran before): ${node.name} can join only through one`,
          { hint: 'start them (lab up brings stopped nodes back), then run lab up again' },
        );
      await writeMembership(lab, node, link, bootstrapMembership(lab));
      return 'bootstrap';
    }
    const mine = peer.members.find((m) => m.peerUrls.includes(peerUrl(node)));
    if (mine && !mine.name && !mine.isLearner) {
      // An original member that never started (a bootstrap cut short): it bootstraps too.
      await writeMembership(lab, node, link, bootstrapMembership(lab));
      return 'bootstrap';
    }
    if (mine) {
      // A member of that name whose data is gone (a fresh disk, a join cut short): out first.
      await removeMember(lab, node, peer, mine, run);
    }
    await join(lab, node, link, peer.link, run, deadlineMs);
    return 'joined';
  } finally {
    run.removed.delete(node.name);
    end();
  }
}

/**
 * Before a member's disk is re-created: leadership off it, then out of the membership.
 * The lab's member lock is taken and kept until the fresh node has joined (or failed).
 * Nothing is touched when the cluster would lose its quorum or its last member.
 */
export async function leaveBeforeRebuild(lab: LabSpec, node: NodeSpec, run: MemberRun): Promise<void> {
  if (!node.services.includes('etcd') || lab.etcd.bootstrap === 'discovery') return;
  const end = await run.serial.turn();
  try {
    const peer = await answeringPeer(lab, node, run);
    const mine = peer?.members.find((m) => m.name === node.name || m.peerUrls.includes(peerUrl(node)));
    if (peer && mine) await removeMember(lab, node, peer, mine, run);
  } catch (err) {
    end();
    throw err;
  }
  run.removed.set(node.name, end);
}

/**
 * A node the Labfile no longer names leaves etcd: found in the member list (by name or
 * peer URL) through a member that stays, or through itself when none answers; leadership
 * moved off it, then removed, alone among the run's changes and only when the members that
 * stay keep their quorum. 'not-a-member' when etcd does not list it. Refused, with nothing
 * touched, when no member answers while the lab still has etcd nodes: lab could not tell
 * whether it is a member, and removing its domain could cost the quorum.
 */
export async function leaveCluster(
  lab: LabSpec,
  node: Reachable,
  run: MemberRun,
): Promise<'removed' | 'not-a-member'> {
  const end = await run.serial.turn();
  try {
    let peer = await answeringPeer(lab, node, run);
    if (!peer) {
      const own = await run.linkTo(node);
      const members = own ? await memberList(own).catch(() => undefined) : undefined;
      if (own && members) peer = { node, link: own, members };
    }
    const staying = etcdNodes(lab).map((n) => n.name);
    if (!peer) {
      if (staying.length === 0) return 'not-a-member';
      throw new NodeError(
        node.name,
        'member',
        `no etcd member answers (${staying.join(', ')}, nor ${node.name}): lab cannot tell whether ${node.name} is a member, and keeps it`,
        { hint: 'bring the members back (lab status shows them), then run lab up again' },
      );
    }
    const mine = peer.members.find((m) => m.name === node.name || m.peerUrls.includes(peerUrl(node)));
    if (!mine) return 'not-a-member';
    await removeMember(lab, node, peer, mine, run);
    return 'removed';
  } finally {
    end();
  }
}

interface Peer {
  node: Reachable;
  link: GuestLink;
  members: EtcdMember[];
}

/** The first other etcd node whose member answers with the member list. */
async function answeringPeer(lab: LabSpec, node: Reachable, run: MemberRun): Promise<Peer | undefined> {
  const others = etcdNodes(lab).filter((n) => n.name !== node.name && !run.removed.has(n.name));
  const answers = await Promise.all(
    others.map(async (n) => {
      const link = await run.linkTo(n);
      if (!link) return undefined;
      const members = await memberList(link).catch(() => undefined);
      return members ? { node: n, link, members } : undefined;
    }),
  );
  // A peer that lists started members knows the cluster; prefer it to one still unstarted.
  return (
    answers.find((a) => a && a.members.some((m) => m.name !== '' && m.name !== node.name)) ??
    answers.find((a) => a !== undefined)
  );
}

/** Removes `member` (the node's) through `peer`, the leadership moved off it first. */
async function removeMember(
  lab: LabSpec,
  node: Reachable,
  peer: Peer,
  member: EtcdMember,
  run: MemberRun,
): Promise<void> {
  const voters = peer.members.filter((m) => !m.isLearner);
  const staying = voters.filter((m) => m.id !== member.id);
  if (!member.isLearner && staying.length === 0)
    throw new NodeError(
      node.name,
      'member',
      `${node.name} is the last etcd member: removing it would end the cluster`,
    );
  // Health of the members that stay: a majority of them must answer, or the cluster could
  // not commit the removal (or would lose its quorum after it). Asked again for a while
  // before refusing: nothing is touched meanwhile.
  const need = Math.floor(staying.length / 2) + 1;
  let healthy = await healthyMembers(lab, staying, run);
  const settleBy = Date.now() + (run.settleMs ?? 60_000);
  while (!member.isLearner && healthy.length < need && Date.now() < settleBy) {
    await sleep(2000, run.signal);
    healthy = await healthyMembers(lab, staying, run);
  }
  if (!member.isLearner && healthy.length < need)
    throw new NodeError(
      node.name,
      'member',
      `refusing to remove ${node.name} from etcd: ${healthy.length} of the ${staying.length} members that stay answer, ${need} are needed for the quorum`,
      { hint: 'bring the other members back first (lab status shows them)' },
    );
  const status = await probeEtcdApi(peer.link).catch(() => undefined);
  if (status?.leaderId === member.id) {
    const to = healthy[0]!;
    const leaderLink = await linkOfMember(lab, member, run);
    if (leaderLink) await moveLeader(leaderLink, to.id).catch(() => undefined);
  }
  await memberRemove(peer.link, member.id);
}

/** The members (of `among`) whose own endpoint answers with a leader. */
async function healthyMembers(lab: LabSpec, among: EtcdMember[], run: MemberRun) {
  const ok = await Promise.all(
    among.map(async (m) => {
      const link = await linkOfMember(lab, m, run);
      const h = link ? await probeEtcdApi(link).catch(() => undefined) : undefined;
      return h && (h.state === 'leader' || h.state === 'follower') ? m : undefined;
    }),
  );
  return ok.filter((m): m is EtcdMember => m !== undefined);
}

async function linkOfMember(lab: LabSpec, m: EtcdMember, run: MemberRun) {
  const n = [...lab.nodes, ...run.leaving].find((x) => x.name === m.name || m.peerUrls.includes(peerUrl(x)));
  return n ? run.linkTo(n) : undefined;
}

/** Adds the node as a learner, starts it as `existing`, promotes it once caught up. */
async function join(
  lab: LabSpec,
  node: NodeSpec,
  link: GuestLink,
  peer: GuestLink,
  run: MemberRun,
  deadlineMs: number,
): Promise<void> {
  const added = await memberAdd(peer, peerUrl(node), { learner: true });
  try {
    const cluster = added.members.map((m) => ({
      name: m.id === added.id ? node.name : m.name,
      peerUrl: m.peerUrls[0] ?? '',
    }));
    const unnamed = cluster.find((c) => !c.name);
    if (unnamed)
      throw new LabError(`etcd lists a member that never started (${unnamed.peerUrl}): remove it first`);
    await writeMembership(lab, node, link, { cluster, state: 'existing' });
    await pollUntil(
      async () => {
        try {
          await memberPromote(peer, added.id);
          return true;
        } catch (err) {
          if (learnerBehind(err)) return undefined;
          throw err;
        }
      },
      {
        deadlineMs,
        initialMs: 500,
        factor: 1.5,
        maxMs: 3000,
        ...(run.signal ? { signal: run.signal } : {}),
        describe: `${node.name}: etcd learner catching up`,
      },
    );
    // The next change (it waits for this one) counts this member among the healthy ones:
    // the turn ends once the member answers as a voter of its own.
    await pollUntil(
      async () => {
        const h = await probeEtcdApi(link).catch(() => undefined);
        return h && (h.state === 'leader' || h.state === 'follower') ? true : undefined;
      },
      {
        deadlineMs,
        initialMs: 300,
        factor: 1.5,
        maxMs: 3000,
        ...(run.signal ? { signal: run.signal } : {}),
        describe: `${node.name}: etcd member healthy after its promotion`,
      },
    );
  } catch (err) {
    // A join that did not finish leaves no member behind.
    await memberRemove(peer, added.id).catch(() => undefined);
    throw new NodeError(node.name, 'member', `joining etcd failed: ${describeError(err)}`, { cause: err });
  }
}

/** Writes the membership file (root's, through sudo) and starts the unit without waiting. */
async function writeMembership(
  lab: LabSpec,
  node: NodeSpec,
  link: GuestLink,
  membership: EtcdMembership,
): Promise<void> {
  const f = membershipFile(lab, node, membership);
  // A constant script; the path is an argument, the content stdin.
  const write = await link.exec(
    [
      'sudo',
      '-n',
      'sh',
      '-c',
      'mkdir -p "${1%/*}" && cat > "$1.lab-tmp" && mv -f "$1.lab-tmp" "$1"',
      'sh',
      f.path,
    ],
    { input: f.content, timeoutMs: 60_000 },
  );
  if (write.code !== 0)
    throw new NodeError(node.name, 'member', `writing ${f.path}: exit ${write.code}: ${write.stderr.trim()}`);
  // --no-block: a bootstrapping member waits for its peers before it reports started.
  const start = await link.exec(['sudo', '-n', 'systemctl', 'start', '--no-block', f.unit], {
    timeoutMs: 60_000,
  });
  if (start.code !== 0)
    throw new NodeError(
      node.name,
      'member',
      `systemctl start ${f.unit}: exit ${start.code}: ${start.stderr.trim()}`,
    );
}

/** Whether the guest has `file`: over SFTP, else (no SFTP) with test -e. */
async function exists(link: GuestLink, file: string): Promise<boolean> {
  const read = await link.readFile(file, { timeoutMs: 15_000 }).then(
    () => true,
    (err: unknown) => (/no such file/i.test(describeError(err)) ? false : undefined),
  );
  if (read !== undefined) return read;
  const r = await link.exec(['test', '-e', file], { timeoutMs: 30_000 });
  return r.code === 0;
}
