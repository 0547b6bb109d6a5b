import { stopAgent } from '../guest/agent.js';
import { mapLimit, type LabContext } from './context.js';
import { findOwnedDomains } from './observe.js';

export interface DownResult {
  domains: string[];
  network?: string;
  keptDisks: boolean;
}

/**
 * Stops and removes the lab's domains (found by their metadata, never by name alone),
 * its managed network and its files. Keeps the image cache. Safe to run twice.
 */
export async function down(ctx: LabContext, opts: { keepDisks: boolean }): Promise<DownResult> {
  const owned = await findOwnedDomains(ctx);
  await mapLimit(owned, 8, async (d) => {
    ctx.onEvent({ kind: 'node', node: d.node, step: 'down', status: 'start' });
    await ctx.virsh.destroy(d.name);
    if (!opts.keepDisks) await ctx.virsh.undefine(d.name);
    ctx.onEvent({
      kind: 'node',
      node: d.node,
      step: 'down',
      status: 'done',
      detail: opts.keepDisks ? 'stopped' : 'removed',
    });
  });
  let network: string | undefined;
  const name = ctx.lab.network.libvirtName;
  if (!opts.keepDisks && name && (await ctx.virsh.listNetworks()).includes(name)) {
    const xml = (await ctx.virsh.netDumpXml(name)) ?? '';
    // Ours when it is named after the lab and uses the bridge name this lab derives.
    const bridge = /<bridge\b[^>]*\bname=['"]([^'"]+)['"]/.exec(xml)?.[1];
    if (bridge === ctx.lab.network.bridge) {
      await ctx.virsh.netDestroy(name);
      await ctx.virsh.netUndefine(name);
      network = name;
    }
  }
  // The connection agent holds connections to nodes that are gone now.
  await stopAgent(ctx.dir.private);
  if (!opts.keepDisks) await ctx.dir.remove();
  return { domains: owned.map((d) => d.name), ...(network ? { network } : {}), keptDisks: opts.keepDisks };
}
