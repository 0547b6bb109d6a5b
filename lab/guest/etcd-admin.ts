/**
 * etcd's membership calls, on a member's v3 JSON gateway (127.0.0.1:2379 in the guest,
 * through the SSH connection): list, add (as a learner), promote, remove, and moving the
 * leadership. etcd 3.4 has them all (`member add --learner`, `member promote`,
 * `move-leader`); the gateway takes and gives uint64 ids as decimal strings.
 */
import { LabError } from '../errors.js';
import type { Exec } from './probes/exec.js';
import { etcdIdHex, parseEtcdMemberList, type EtcdMember } from './probes/etcd.js';

const TIMEOUT_MS = 15_000;

/** A refusal by etcd (HTTP status and its message), kept apart from a lost connection. */
export class EtcdRefusedError extends LabError {
  constructor(
    readonly path: string,
    readonly status: number,
    readonly body: string,
  ) {
    super(`etcd ${path}: HTTP ${status}: ${etcdMessage(body)}`);
  }
}

/** The message in an etcd gateway error body (`{"error": ..., "message": ...}`), or the body. */
export function etcdMessage(body: string): string {
  try {
    const doc = JSON.parse(body) as { message?: unknown; error?: unknown };
    const m = typeof doc.message === 'string' ? doc.message : typeof doc.error === 'string' ? doc.error : '';
    if (m) return m;
  } catch {
    // not JSON
  }
  return body.trim().slice(0, 300);
}

/** A hex member id (as lab shows them) as the gateway's decimal uint64. Pure. */
export function idDecimal(hex: string): string {
  return BigInt(`0x${hex}`).toString(10);
}

type Link = Required<Pick<Exec, 'http'>>;

async function call(
  link: Link,
  path: string,
  body: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const r = await link.http(
    { port: 2379 },
    { method: 'POST', path, body: JSON.stringify(body), timeoutMs: TIMEOUT_MS },
  );
  if (r.status !== 200) throw new EtcdRefusedError(path, r.status, r.body);
  return JSON.parse(r.body) as Record<string, unknown>;
}

export async function memberList(link: Link): Promise<EtcdMember[]> {
  return parseEtcdMemberList(JSON.stringify(await call(link, '/v3/cluster/member/list', {})));
}

/** Adds a member (a learner unless `voter`); returns its id and the member list after it. */
export async function memberAdd(
  link: Link,
  peerUrl: string,
  opts: { learner: boolean },
): Promise<{ id: string; members: EtcdMember[] }> {
  const r = await call(link, '/v3/cluster/member/add', { peerURLs: [peerUrl], isLearner: opts.learner });
  const member = r.member as { ID?: unknown } | undefined;
  const id = etcdIdHex(member?.ID);
  if (!id) throw new LabError(`etcd member add ${peerUrl}: no id in the answer`);
  return { id, members: parseEtcdMemberList(JSON.stringify({ members: r.members ?? [] })) };
}

export async function memberRemove(link: Link, id: string): Promise<void> {
  await call(link, '/v3/cluster/member/remove', { ID: idDecimal(id) });
}

/** Promotes a learner; etcd refuses while it has not caught up with the leader. */
export async function memberPromote(link: Link, id: string): Promise<void> {
  await call(link, '/v3/cluster/member/promote', { ID: idDecimal(id) });
}

/** True for etcd's refusal to promote a learner that is still behind (try again later). */
export function learnerBehind(err: unknown): boolean {
  return (
    err instanceof EtcdRefusedError && /in sync with leader|not ready|catch up/i.test(etcdMessage(err.body))
  );
}

/** Hands the leadership to `targetId`; must be asked of the leader itself. */
export async function moveLeader(leader: Link, targetId: string): Promise<void> {
  await call(leader, '/v3/maintenance/transfer-leadership', { targetID: idDecimal(targetId) });
}
