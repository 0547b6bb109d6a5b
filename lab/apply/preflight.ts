/**
 * Phase 1 of `lab up`: is this host fit for the lab? libvirt answers on a URI that keeps
 * its checks on, the tools are installed, the bridge exists (or the managed subnet is
 * free), QEMU can reach the lab's folders, and no domain of someone else's carries one of
 * the lab's names. Nothing is written before all of it passes.
 */
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { HostError } from '../errors.js';
import { overlaps, parseCidr } from '../plan/ipv4.js';
import type { NodeSpec } from '../plan/model.js';
import type { LabPlan, ObservedNode } from '../plan/plan.js';
import { run } from '../runtime/exec.js';
import { hostRoutes, interfaceExists, isBridge } from '../providers/host.js';
import { findIsoTool } from '../providers/iso.js';
import { cacheRoot } from '../store/lab-dir.js';
import type { LabContext } from './context.js';
import { checkHostPaths } from './host-paths.js';
import { findForeignDomains } from './observe.js';

/**
 * Everything `lab up` checks before it writes anything. A domain with one of the lab's
 * names that is not the lab's is looked up while the host is checked; a host problem is
 * the one reported.
 */
export async function preflightUp(ctx: LabContext): Promise<void> {
  const [checked, looked] = await Promise.allSettled([
    Promise.all([
      preflight(ctx),
      checkHostPaths({
        labDir: ctx.dir.root,
        cacheDir: cacheRoot(),
        qemuIsOtherUser: /\/system(\?|$)/.test(ctx.virsh.uri),
        newNodes: ctx.lab.nodes.filter((n) => !existsSync(path.join(ctx.dir.disks, `${n.name}.qcow2`)))
          .length,
      }),
    ]),
    findForeignDomains(ctx),
  ]);
  if (checked.status === 'rejected') throw checked.reason;
  if (looked.status === 'rejected') throw looked.reason;
  const foreign = looked.value;
  if (foreign.length > 0)
    throw new HostError(
      `refusing to touch ${foreign.map((f) => f.domain).join(', ')}: ${foreign.length === 1 ? 'a domain' : 'domains'} with the name of ${foreign.map((f) => f.node).join(', ')} of lab ${ctx.lab.name} ${foreign.length === 1 ? 'exists' : 'exist'} without this lab's metadata`,
      { hint: 'lab never deletes what it did not create: rename or remove it yourself, or rename the lab' },
    );
}

/** Checks the host before anything is created; throws HostError with a hint. */
export async function preflight(ctx: LabContext): Promise<void> {
  // The URI was checked when ctx.virsh was made (providers/uri.ts approveUri), before any call.
  // Independent checks, at once: each is a process start.
  await Promise.all([
    ctx.virsh.check(),
    run('qemu-img', ['--version'], { timeoutMs: 10_000 }).catch((cause: unknown) => {
      throw new HostError('qemu-img is not installed', { hint: 'apt-get install qemu-utils', cause });
    }),
    findIsoTool(),
    checkNetworkHost(ctx),
  ]);
}

async function checkNetworkHost(ctx: LabContext): Promise<void> {
  const net = ctx.lab.network;
  if (net.mode === 'bridge') {
    if (!interfaceExists(net.bridge))
      throw new HostError(`bridge ${net.bridge} does not exist on this host`, {
        hint: `create it first (ip link add ${net.bridge} type bridge), or use network.mode: managed`,
      });
    if (!isBridge(net.bridge)) throw new HostError(`${net.bridge} exists but is not a bridge`);
  } else {
    await checkManagedNetworkFree(ctx);
  }
}

/** A managed CIDR must not collide with a route of the host or another libvirt network. */
export async function checkManagedNetworkFree(ctx: LabContext): Promise<void> {
  const net = ctx.lab.network;
  const mine = parseCidr(net.cidr);
  const ours = (await ctx.virsh.listNetworks()).includes(net.libvirtName!);
  if (ours) return; // already created by this lab: its route is ours too
  if (interfaceExists(net.bridge))
    throw new HostError(`bridge ${net.bridge} already exists: another lab or tool uses it`, {
      hint: 'set network.bridge to another name',
    });
  for (const route of await hostRoutes()) {
    if (overlaps(mine, parseCidr(route))) {
      throw new HostError(`network.cidr ${net.cidr} collides with the host route ${route}`, {
        hint: 'choose another cidr for the managed network',
      });
    }
  }
  for (const name of await ctx.virsh.listNetworks()) {
    const xml = await ctx.virsh.netDumpXml(name);
    const m =
      xml &&
      /<ip[^>]*address=['"]([\d.]+)['"][^>]*(?:netmask=['"]([\d.]+)['"]|prefix=['"](\d+)['"])/.exec(xml);
    if (!m) continue;
    const prefix = m[3]
      ? Number(m[3])
      : m[2]!.split('.').reduce((a, o) => a + (Number(o).toString(2).match(/1/g)?.length ?? 0), 0);
    if (overlaps(mine, parseCidr(`${m[1]}/${prefix}`)))
      throw new HostError(
        `network.cidr ${net.cidr} collides with libvirt network ${name} (${m[1]}/${prefix})`,
      );
  }
}

/**
 * Bridge mode puts nodes on a real LAN: before a node is created, its address must not
 * answer already (another host has it). A TCP connection attempt to port 22 is enough:
 * a reply of any kind (accepted or refused) means the address is taken.
 */
export async function checkAddressesFree(
  ctx: LabContext,
  plan: LabPlan,
  observed: Map<string, ObservedNode>,
): Promise<void> {
  if (ctx.lab.network.mode !== 'bridge') return;
  // A node of this lab that leaves first (a rename that keeps the address) frees it itself.
  const freed = new Set(plan.leaving.filter((l) => l.first && l.domain).map((l) => l.ip));
  const fresh = ctx.lab.nodes.filter(
    (n) =>
      !freed.has(n.ip) &&
      observed.get(n.name)?.state !== 'running' &&
      plan.nodes.some((p) => p.node === n.name && p.actions.includes('start')),
  );
  const taken = (
    await Promise.all(fresh.map(async (n) => ((await addressAnswers(n.ip, 1500)) ? n : undefined)))
  ).filter((n): n is NodeSpec => n !== undefined);
  if (taken.length > 0) {
    throw new HostError(
      `address already in use on ${ctx.lab.network.bridge}: ${taken.map((n) => `${n.ip} (${n.name})`).join(', ')}`,
      {
        hint: 'another machine answers there; pick free addresses in the Labfile',
      },
    );
  }
}

/** True when something answers a TCP connection to ip:22 (accepts or refuses) within the time. */
export function addressAnswers(ip: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: ip, port: 22, timeout: timeoutMs });
    const done = (answered: boolean) => {
      socket.destroy();
      resolve(answered);
    };
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED'));
  });
}
