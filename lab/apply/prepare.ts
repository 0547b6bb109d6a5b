/**
 * Phase 2 of `lab up` (and all of `lab plan`): read what exists and decide what to do.
 * Images are made ready (or only located, for a read-only caller), the accelerator is
 * chosen, libvirt is asked what each node and the managed network are, every node is
 * rendered, and the plan is their difference.
 */
import { randomBytes } from 'node:crypto';
import { planLab, type LabPlan, type ObservedNode } from '../plan/plan.js';
import { chooseAccelerator } from '../providers/host.js';
import { ensureImage, imageLocation, type BaseImage } from '../providers/images.js';
import { renderNode, type DesiredNode } from '../render/node.js';
import type { DomainType } from '../render/types.js';
import type { LabContext } from './context.js';
import { readState } from '../store/state-file.js';
import { findLeavingNodes, observeNodes } from './observe.js';

/** Deadlines per phase; TCG guests boot several times slower than KVM ones. */
export function deadlines(type: DomainType) {
  const scale = Number(process.env.LAB_TIMEOUT_SCALE ?? 1) || 1;
  const base =
    type === 'kvm' ? { sshMs: 300_000, servicesMs: 300_000 } : { sshMs: 900_000, servicesMs: 600_000 };
  return { sshMs: base.sshMs * scale, servicesMs: base.servicesMs * scale };
}

export type Deadlines = ReturnType<typeof deadlines>;

/** What `prepare` found and decided. */
export interface Prepared {
  /** The lab's secret (throw-away for a read-only caller when the lab has none yet). */
  secret: Buffer;
  /** Each template's base image, by template reference. */
  images: Map<string, BaseImage>;
  accel: Awaited<ReturnType<typeof chooseAccelerator>>;
  desired: DesiredNode[];
  observed: Map<string, ObservedNode>;
  plan: LabPlan;
}

/** Reads the current state and computes the plan. No mutation except the lab folder and keys. */
export async function prepare(
  ctx: LabContext,
  opts: { buildImages: boolean; write: boolean },
): Promise<Prepared> {
  // A read-only caller (lab plan) gets throw-away keys when the lab has none yet.
  const secret = (await ctx.dir.secret(opts.write)) ?? randomBytes(32);
  if (opts.write) {
    await ctx.dir.ensure();
    await ctx.dir.writeAccessFiles(ctx.lab, secret);
  }
  const images = new Map<string, BaseImage>();
  for (const node of ctx.lab.nodes) {
    if (images.has(node.templateRef)) continue;
    ctx.onEvent({ kind: 'node', node: node.name, step: 'image', status: 'start' });
    if (!opts.buildImages) images.set(node.templateRef, imageLocation(node.template));
    else
      images.set(
        node.templateRef,
        await ensureImage(node.template, {
          onEvent: ctx.onEvent,
          ...(ctx.signal ? { signal: ctx.signal } : {}),
        }),
      );
  }
  // Where each node's files are does not depend on the accelerator: read libvirt's
  // state while the accelerator is chosen.
  const paths = new Map(
    ctx.lab.nodes.map((node) => [node.name, ctx.dir.nodePaths(node, images.get(node.templateRef)!)] as const),
  );
  const [accel, observed, network, leaving] = await Promise.all([
    chooseAccelerator(ctx.virsh, ctx.lab.accelerator),
    observeNodes(ctx, paths),
    managedNetworkState(ctx),
    readState(ctx.dir.stateFile).then((r) => findLeavingNodes(ctx, r.state)),
  ]);
  const desired = ctx.lab.nodes.map((node) =>
    renderNode({ lab: ctx.lab, node, paths: paths.get(node.name)!, secret, type: accel.type }),
  );
  const plan = planLab(ctx.lab, desired, observed, network, leaving);
  return { secret, images, accel, desired, observed, plan };
}

async function managedNetworkState(
  ctx: LabContext,
): Promise<{ exists: boolean; active: boolean } | undefined> {
  if (ctx.lab.network.mode !== 'managed') return undefined;
  const name = ctx.lab.network.libvirtName!;
  const exists = (await ctx.virsh.listNetworks()).includes(name);
  return { exists, active: exists && (await ctx.virsh.netIsActive(name)) };
}
