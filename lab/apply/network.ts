/** Phase 3 of `lab up`: the lab's managed libvirt network, created or started when the plan says so. */
import { acquireLock, hostNetworksLockFile } from '../store/lock.js';
import type { LabPlan } from '../plan/plan.js';
import { Virsh } from '../providers/virsh.js';
import { renderNetworkXml } from '../render/network-xml.js';
import type { LabContext } from './context.js';
import { checkManagedNetworkFree } from './preflight.js';

/**
 * Creates or starts the lab's managed network under a host-wide lock (R13, R14): two labs
 * brought up at once must not both find one subnet or bridge free, so the check is made
 * again, under the lock, right before the define. A network this run defined and could
 * not start is undefined again: a refused up leaves nothing.
 */
export async function applyNetwork(ctx: LabContext, plan: LabPlan): Promise<void> {
  const name = ctx.lab.network.libvirtName;
  if (!name || plan.network.length === 0) return;
  // Held for a few virsh calls; a libvirtd restart under the holder can stretch them.
  const lock = await acquireLock(hostNetworksLockFile(), "this host's lab networks", {
    timeoutMs: 10 * 60_000,
    shared: true,
    ...(ctx.signal ? { signal: ctx.signal } : {}),
  });
  try {
    let defined = false;
    if (plan.network.includes('define-network')) {
      await checkManagedNetworkFree(ctx);
      ctx.onEvent({
        kind: 'log',
        level: 'info',
        message: `creating network ${name} (${ctx.lab.network.cidr}, bridge ${ctx.lab.network.bridge})`,
      });
      await ctx.virsh.netDefine(renderNetworkXml(ctx.lab));
      defined = true;
    }
    if (plan.network.includes('start-network'))
      await ctx.virsh.netStart(name).catch(async (err: unknown) => {
        // Taken back even after a Ctrl-C (a Virsh without the signal, briefly): a start that
        // timed out may have run, so destroy before undefine (undefine alone would leave
        // it running, transient).
        if (defined) {
          const rollback = new Virsh(ctx.virsh.uri, undefined, { budgetMs: 10_000 });
          await rollback.netDestroy(name).catch(() => undefined);
          await rollback.netUndefine(name).catch(() => undefined);
        }
        throw err;
      });
  } finally {
    await lock.release();
  }
}
