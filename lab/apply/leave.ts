/**
 * Nodes the Labfile no longer names leave the lab (issue 18): out of etcd's membership first
 * (leadership moved off, removed through a member that stays, the quorum guarded, one change
 * at a time: membership.ts), then the domain destroyed and undefined, then its files. The
 * node's state record goes last, so a run cut short anywhere is taken up by the next
 * `lab up`, which finds the node again by that record, its domain's metadata or its files.
 */
import { rm } from 'node:fs/promises';
import { describeError } from '../errors.js';
import type { LeavePlan } from '../plan/plan.js';
import { failpoint } from '../runtime/failpoint.js';
import { renderingFile } from '../store/rendered.js';
import type { StateWriter } from '../store/state-file.js';
import type { LabContext } from './context.js';
import { leaveCluster, type MemberRun } from './membership.js';

export interface LeaveResult {
  node: string;
  ok: boolean;
  /** What etcd had of it: removed, or it was not a member (absent when not asked). */
  member?: 'removed' | 'not-a-member';
  /** The plan's actions that were carried out. */
  actions: LeavePlan['actions'];
  error?: string;
}

/** The leaving nodes, one after another; a node that cannot leave etcd is kept whole. */
export async function leaveNodes(
  ctx: LabContext,
  plans: readonly LeavePlan[],
  state: StateWriter,
  members: MemberRun,
): Promise<LeaveResult[]> {
  const results: LeaveResult[] = [];
  for (const l of plans) {
    if (l.actions.length === 0) continue;
    ctx.onEvent({ kind: 'node', node: l.node, step: 'leave', status: 'start' });
    const done: LeavePlan['actions'] = [];
    let member: LeaveResult['member'];
    try {
      if (l.actions.includes('leave-etcd') && l.ip) {
        member = await leaveCluster(ctx.lab, { name: l.node, ip: l.ip }, members);
        done.push('leave-etcd');
        if (member === 'removed')
          ctx.onEvent({
            kind: 'log',
            level: 'info',
            message: `${l.node}: left etcd (its peers removed it, leadership moved off it first)`,
          });
        failpoint('leave-after-member', l.node);
      }
      if (l.domain) {
        if (l.actions.includes('destroy')) {
          await ctx.virsh.destroy(l.domain);
          done.push('destroy');
        }
        await ctx.virsh.undefine(l.domain);
        done.push('undefine');
        failpoint('leave-after-undefine', l.node);
      }
      if (l.files.length) {
        await Promise.all(l.files.map((f) => rm(f, { force: true })));
        done.push('delete-files');
      }
      // The first-boot files lab plan diffs against (private, not a planned action).
      await rm(renderingFile(ctx.dir, l.node), { force: true });
      await state.update((s) => {
        delete s.nodes[l.node];
      });
      ctx.onEvent({ kind: 'node', node: l.node, step: 'leave', status: 'done', detail: 'removed' });
      results.push({ node: l.node, ok: true, ...(member ? { member } : {}), actions: done });
    } catch (err) {
      const error = describeError(err);
      ctx.onEvent({ kind: 'node', node: l.node, step: 'leave', status: 'fail', detail: error });
      results.push({ node: l.node, ok: false, ...(member ? { member } : {}), actions: done, error });
      if (ctx.signal?.aborted) throw err;
    }
  }
  return results;
}
