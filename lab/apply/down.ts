import type { EventSink } from '../events.js';
import { stopAgent } from '../guest/agent.js';
import { networkOwnedBy } from '../render/network-xml.js';
import type { Virsh } from '../providers/virsh.js';
import type { LabDir } from '../store/lab-dir.js';
import { mapLimit } from '../runtime/limit.js';
import type { LabContext } from './context.js';
import { findOwnedDomains } from './observe.js';

export interface DownResult {
  domains: string[];
  network?: string;
  /** A managed network kept because domains of someone else still use it. */
  networkKept?: string;
  keptDisks: boolean;
}

/** What `down` needs: the lab's name and files, libvirt, and its managed network if any. */
export interface DownTarget {
  name: string;
  dir: LabDir;
  virsh: Virsh;
  onEvent: EventSink;
  network?: { libvirtName: string; bridge: string };
}

export function downTarget(ctx: LabContext): DownTarget {
  const net = ctx.lab.network;
  return {
    name: ctx.lab.name,
    dir: ctx.dir,
    virsh: ctx.virsh,
    onEvent: ctx.onEvent,
    ...(net.libvirtName ? { network: { libvirtName: net.libvirtName, bridge: net.bridge } } : {}),
  };
}

/**
 * Stops and removes the lab's domains (found by their metadata, never by name alone),
 * its managed network and its files. Keeps the image cache. Safe to run twice.
 */
export async function down(t: DownTarget, opts: { keepDisks: boolean }): Promise<DownResult> {
  const owned = await findOwnedDomains(t.virsh, t.name);
  await mapLimit(owned, 8, async (d) => {
    t.onEvent({ kind: 'node', node: d.node, step: 'down', status: 'start' });
    await t.virsh.destroy(d.name);
    if (!opts.keepDisks) await t.virsh.undefine(d.name);
    t.onEvent({
      kind: 'node',
      node: d.node,
      step: 'down',
      status: 'done',
      detail: opts.keepDisks ? 'stopped' : 'removed',
    });
  });
  let network: string | undefined;
  let networkKept: string | undefined;
  const name = t.network?.libvirtName;
  if (!opts.keepDisks && name && (await t.virsh.listNetworks()).includes(name)) {
    const xml = (await t.virsh.netDumpXml(name)) ?? '';
    // Ours when it carries this lab's metadata, or is named after the lab and uses the
    // bridge this lab names (a lab whose state file was never written knows only the
    // default bridge, and the metadata finds a network with a bridge of its own choice).
    const bridge = /<bridge\b[^>]*\bname=['"]([^'"]+)['"]/.exec(xml)?.[1];
    const ours = bridge === t.network!.bridge || networkOwnedBy(xml, t.name);
    // libvirt counts the interfaces still plugged in: someone else's domains.
    const connections = Number(/<network\b[^>]*\bconnections=['"](\d+)['"]/.exec(xml)?.[1] ?? 0);
    if (ours && connections > 0) {
      networkKept = name;
      t.onEvent({
        kind: 'log',
        level: 'warn',
        message: `network ${name} is kept: ${connections} interface(s) of domains outside this lab still use it`,
      });
    } else if (ours) {
      await t.virsh.netDestroy(name);
      await t.virsh.netUndefine(name);
      network = name;
    }
  }
  // The connection agent holds connections to nodes that are gone now.
  await stopAgent(t.dir.private);
  if (!opts.keepDisks) await t.dir.remove();
  return {
    domains: owned.map((d) => d.name),
    ...(network ? { network } : {}),
    ...(networkKept ? { networkKept } : {}),
    keptDisks: opts.keepDisks,
  };
}
