import { existsSync } from 'node:fs';
import type { ObservedNode } from '../plan/plan.js';
import { parseDomainXml, parseLabMetadata } from '../render/domain-xml.js';
import type { Virsh } from '../providers/virsh.js';
import { mapLimit } from '../runtime/limit.js';
import type { LabContext } from './context.js';

export interface ObservedDomain {
  name: string;
  lab: string;
  node: string;
  state: string;
  configHash?: string;
  ip?: string;
}

/**
 * Every domain on this libvirt that carries lab metadata for `lab`, found by the
 * metadata itself (not by name), so `down` works even when local state is gone.
 */
export async function findOwnedDomains(virsh: Virsh, lab: string): Promise<ObservedDomain[]> {
  const names = await virsh.listDomains();
  const found = await mapLimit(names, 8, async (name): Promise<ObservedDomain | undefined> => {
    const xml = await virsh.dumpXml(name);
    const meta = xml ? parseLabMetadata(xml) : undefined;
    if (!meta || meta.lab !== lab) return undefined;
    const state = await virsh.domState(name);
    return { name, lab: meta.lab, node: meta.node, state, configHash: meta.configHash, ip: meta.ip };
  });
  return found.filter((d): d is ObservedDomain => d !== undefined);
}

/** What exists of each node of the lab: domain (owned or not), disk, seed. */
export async function observeNodes(
  ctx: LabContext,
  paths: Map<string, { disk: string; seed?: string; fwcfg?: string }>,
): Promise<Map<string, ObservedNode>> {
  const states = await ctx.virsh.listDomainStates();
  const entries = await mapLimit(ctx.lab.nodes, 8, async (node): Promise<[string, ObservedNode]> => {
    const p = paths.get(node.name)!;
    const diskExists = existsSync(p.disk);
    const seedFile = p.seed ?? p.fwcfg;
    const seedExists = seedFile !== undefined && existsSync(seedFile);
    const state = states.get(node.domain);
    if (state === undefined) return [node.name, { state: 'missing', owned: false, diskExists, seedExists }];
    const xml = (await ctx.virsh.dumpXml(node.domain)) ?? '';
    const meta = parseLabMetadata(xml);
    const owned = meta !== undefined && meta.lab === ctx.lab.name && meta.node === node.name;
    const dom = parseDomainXml(xml);
    return [
      node.name,
      {
        state,
        owned,
        ...(meta?.configHash ? { configHash: meta.configHash, schema: meta.schema } : {}),
        memoryMiB: dom.memoryMiB,
        vcpus: dom.vcpus,
        type: dom.type,
        ...(dom.mac ? { mac: dom.mac } : {}),
        uuid: dom.uuid,
        diskExists,
        seedExists,
      },
    ];
  });
  return new Map(entries);
}

/**
 * Domains that carry the name of one of the lab's nodes but not the lab's metadata for
 * that node: someone else's. `lab up` refuses to start while one exists.
 */
export async function findForeignDomains(ctx: LabContext): Promise<{ node: string; domain: string }[]> {
  const states = await ctx.virsh.listDomainStates();
  const clashing = ctx.lab.nodes.filter((n) => states.has(n.domain));
  const foreign = await mapLimit(clashing, 8, async (node) => {
    const meta = parseLabMetadata((await ctx.virsh.dumpXml(node.domain)) ?? '');
    return meta?.lab === ctx.lab.name && meta.node === node.name
      ? undefined
      : { node: node.name, domain: node.domain };
  });
  return foreign.filter((f): f is { node: string; domain: string } => f !== undefined);
}
