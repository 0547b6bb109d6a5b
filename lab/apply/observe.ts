import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { LeavingNode, ObservedNode } from '../plan/plan.js';
import type { LabState } from '../store/state-file.js';
import { parseDomainXml, parseLabMetadata } from '../render/domain-xml.js';
import { linkState } from '../providers/drills.js';
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
    const live = owned && (state === 'running' || state === 'paused');
    const linkDown = live && (await linkState(ctx.virsh, node.domain, node.mac)) === 'down';
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
        ...(dom.tbCacheMiB !== undefined ? { tbCacheMiB: dom.tbCacheMiB } : {}),
        uuid: dom.uuid,
        ...(linkDown ? { linkDown } : {}),
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

/** The node a file of the lab folder belongs to, by the names `LabDir.nodePaths` gives. */
export function nodeOfFile(folder: 'disks' | 'console', file: string): string | undefined {
  const m = folder === 'disks' ? /^(.+?)(?:-seed\.iso|\.qcow2|\.ign)$/.exec(file) : /^(.+)\.log$/.exec(file);
  return m?.[1];
}

/**
 * Nodes of the lab that the Labfile no longer names, from every trace they leave: the
 * state file's records, domains of the lab's name prefix that carry its metadata for them,
 * and their files in the lab folder. A domain without the lab's metadata is never taken.
 */
export async function findLeavingNodes(
  ctx: LabContext,
  previous: LabState | undefined,
): Promise<LeavingNode[]> {
  const named = new Set(ctx.lab.nodes.map((n) => n.name));
  const domainsOf = new Set(ctx.lab.nodes.map((n) => n.domain));
  const found = new Map<string, { domain?: string; ip?: string; files: string[] }>();
  const entry = (node: string) => {
    let e = found.get(node);
    if (!e) found.set(node, (e = { files: [] }));
    return e;
  };
  for (const [node, rec] of Object.entries(previous?.nodes ?? {}))
    if (!named.has(node)) Object.assign(entry(node), { domain: rec.domain, ip: rec.ip });
  const prefix = `${ctx.lab.name}-`;
  const states = await ctx.virsh.listDomainStates();
  for (const name of states.keys())
    if (name.startsWith(prefix) && !domainsOf.has(name)) {
      const node = name.slice(prefix.length);
      if (node && !named.has(node)) entry(node).domain ??= name;
    }
  for (const folder of ['disks', 'console'] as const) {
    const dir = folder === 'disks' ? ctx.dir.disks : ctx.dir.console;
    for (const f of await readdir(dir).catch(() => [] as string[])) {
      const node = nodeOfFile(folder, f);
      if (node && !named.has(node)) entry(node).files.push(path.join(dir, f));
    }
  }
  const leaving = await mapLimit([...found], 8, async ([node, e]): Promise<LeavingNode> => {
    const state = e.domain ? states.get(e.domain) : undefined;
    const meta =
      e.domain && state !== undefined
        ? parseLabMetadata((await ctx.virsh.dumpXml(e.domain)) ?? '')
        : undefined;
    const owned = meta !== undefined && meta.lab === ctx.lab.name && meta.node === node;
    const ip = (owned ? meta.ip : undefined) ?? e.ip;
    return {
      node,
      ...(owned ? { domain: e.domain! } : {}),
      state: owned ? state! : 'missing',
      ...(ip ? { ip } : {}),
      files: e.files.sort(),
    };
  });
  // Nothing of it is this lab's: a record of a node whose domain is someone else's now.
  return leaving
    .filter((l) => l.domain !== undefined || l.files.length > 0 || previous?.nodes[l.node] !== undefined)
    .sort((a, b) => a.node.localeCompare(b.node));
}
