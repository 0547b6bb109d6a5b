/**
 * Checkpoints: a whole running lab saved (every node paused, snapshotted with its memory,
 * resumed together) and brought back in seconds. libvirt 9.0 reverts internal snapshots
 * only (external ones need 9.9), so each node's checkpoint lives inside its own qcow2
 * overlay, beside its disk state; the base image is never written. This module knows what
 * a checkpoint depends on (list, staleness, drift) and deletes them; checkpoint-save.ts and
 * checkpoint-restore.ts take and bring them back.
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import path from 'node:path';
import { imageInfo } from '../providers/qemu-img.js';
import { LabError } from '../errors.js';
import type { ObservedNode } from '../plan/plan.js';
import { imageLocation } from '../providers/images.js';
import { deleteSnapshot, snapshotNames } from '../providers/snapshots.js';
import type { DesiredNode } from '../render/node.js';
import { mapLimit } from '../runtime/limit.js';
import {
  SNAPSHOT_PREFIX,
  readCheckpoints,
  writeCheckpoints,
  type Checkpoint,
  type CheckpointBook,
  type CheckpointNode,
} from '../store/checkpoints.js';
import type { LabContext } from './context.js';
import { observeNodes } from './observe.js';

/** One checkpoint as `lab checkpoint list` shows it. */
export interface CheckpointView {
  name: string;
  created: string;
  nodes: string[];
  /** The memory state the nodes' overlays hold for it, in bytes. */
  sizeBytes: number;
  pausedMs: number;
  /** Why a restore would not bring back this lab as it is (empty: it would). */
  stale: string[];
}

/** sha256 of the lab's secret: what a checkpoint compares, never the secret itself. */
export const secretDigest = (secret: Buffer | string) =>
  createHash('sha256')
    .update(typeof secret === 'string' ? Buffer.from(secret, 'hex') : secret)
    .digest('hex');

/** Every checkpoint of the lab, oldest first, each with why it is stale, if it is. */
export async function listCheckpoints(
  ctx: LabContext,
): Promise<{ checkpoints: CheckpointView[]; restored?: CheckpointBook['restored'] }> {
  const book = await readCheckpoints(ctx.dir.private);
  const secret = await ctx.dir.secret(false);
  const all = Object.values(book.checkpoints).sort((a, b) => a.created.localeCompare(b.created));
  const checkpoints = await mapLimit(all, 4, async (cp) => ({
    name: cp.name,
    created: cp.created,
    nodes: Object.keys(cp.nodes).sort(),
    sizeBytes: Object.values(cp.nodes).reduce((sum, n) => sum + (n.stateBytes ?? 0), 0),
    pausedMs: cp.pausedMs,
    stale: await staleness(ctx, cp, secret),
  }));
  return { checkpoints, ...(book.restored ? { restored: book.restored } : {}) };
}

/** What a checkpoint records of a node's overlay file, to know it again. */
export function diskIdentity(st: BigIntStats): Pick<CheckpointNode, 'diskIno' | 'diskBirthNs'> {
  return { diskIno: Number(st.ino), diskBirthNs: String(st.birthtimeNs) };
}

/**
 * Whether the file at a node's disk path is still the one the checkpoint saw: the same
 * inode and, when recorded, the same birth time (a new file may reuse a freed inode). Pure.
 */
export function sameDisk(
  was: Pick<CheckpointNode, 'diskIno' | 'diskBirthNs'>,
  now: Pick<BigIntStats, 'ino' | 'birthtimeNs'>,
): boolean {
  if (BigInt(was.diskIno) !== now.ino) return false;
  return was.diskBirthNs === undefined || was.diskBirthNs === String(now.birthtimeNs);
}

/**
 * What changed since the checkpoint was taken that a restore cannot undo: nodes that
 * joined or left, a node's disk re-created (lab reset, a replace: the snapshot went with
 * the old overlay), a node re-defined with another identity, the lab's keys rotated.
 */
export async function staleness(
  ctx: LabContext,
  cp: Checkpoint,
  secret: Buffer | undefined,
): Promise<string[]> {
  const why: string[] = [];
  const now = ctx.lab.nodes.map((n) => n.name);
  const then = Object.keys(cp.nodes);
  const joined = now.filter((n) => !then.includes(n));
  const left = then.filter((n) => !now.includes(n));
  if (joined.length) why.push(`joined since: ${joined.join(', ')}`);
  if (left.length) why.push(`left since: ${left.join(', ')}`);
  const nodes = ctx.lab.nodes.filter((n) => cp.nodes[n.name]);
  const per = await mapLimit(nodes, 8, async (node) => {
    const was = cp.nodes[node.name]!;
    const disk = ctx.dir.nodePaths(node, imageLocation(node.template)).disk;
    const now = await stat(disk, { bigint: true }).catch(() => undefined);
    if (now === undefined) return `${node.name}: its disk is gone`;
    if (!sameDisk(was, now)) return `${node.name}: its disk was re-created since (lab reset, or a replace)`;
    if (was.uuid !== node.uuid) return `${node.name}: another identity since`;
    if (!(await snapshotNames(ctx.virsh, node.domain)).includes(cp.snapshot))
      return `${node.name}: libvirt has no snapshot ${cp.snapshot}`;
    return undefined;
  });
  why.push(...per.filter((w): w is string => w !== undefined));
  if (secret && secretDigest(secret) !== secretDigest(cp.secret)) why.push("the lab's keys changed since");
  return why;
}

/**
 * What a restore would bring back that the Labfile no longer says: a first-boot config,
 * memory or vCPUs of the definition each snapshot holds. Pure.
 */
export function definitionDrift(cp: Checkpoint, desired: readonly DesiredNode[]): string[] {
  const out: string[] = [];
  for (const d of desired) {
    const was = cp.nodes[d.spec.name];
    if (!was) continue;
    if (was.configHash !== d.configHash) out.push(`${d.spec.name}: its first-boot config has changed since`);
    if (was.memoryMiB !== d.spec.memoryMiB)
      out.push(`${d.spec.name}: ${was.memoryMiB} MiB of memory then, ${d.spec.memoryMiB} MiB in the Labfile`);
    if (was.vcpus !== d.spec.cpus)
      out.push(`${d.spec.name}: ${was.vcpus} vCPUs then, ${d.spec.cpus} in the Labfile`);
  }
  return out;
}

/** The checkpoint called `name`, or an error that lists the ones there are. */
export function findCheckpoint(book: CheckpointBook, name: string, lab: string): Checkpoint {
  const cp = book.checkpoints[name];
  if (cp) return cp;
  const names = Object.keys(book.checkpoints).sort();
  throw new LabError(`lab ${lab} has no checkpoint ${name}`, {
    hint: names.length
      ? `its checkpoints: ${names.join(', ')}`
      : `take one with: lab checkpoint save ${name}`,
  });
}

/** Deletes a checkpoint: each node's snapshot (its memory state and disk delta), then its record. */
export async function deleteCheckpoint(ctx: LabContext, name: string): Promise<void> {
  const book = await readCheckpoints(ctx.dir.private);
  const cp = findCheckpoint(book, name, ctx.lab.name);
  await mapLimit(Object.entries(cp.nodes), 8, ([node, n]) => dropSnapshot(ctx, node, n.domain, cp.snapshot));
  delete book.checkpoints[name];
  await writeCheckpoints(ctx.dir.private, book);
  await deleteOrphans(ctx, book);
}

/**
 * Deletes the snapshots of lab checkpoints that the book does not name: what a save killed
 * before its record was written left behind (no list ever offered them).
 */
export async function deleteOrphans(ctx: LabContext, book: CheckpointBook): Promise<string[]> {
  const known = new Set(Object.values(book.checkpoints).map((cp) => cp.snapshot));
  const found = await mapLimit(ctx.lab.nodes, 8, async (node) => {
    const orphans = (await snapshotNames(ctx.virsh, node.domain)).filter(
      (s) => s.startsWith(SNAPSHOT_PREFIX) && !known.has(s),
    );
    for (const s of orphans) await dropSnapshot(ctx, node.name, node.domain, s);
    return orphans.map((s) => `${node.name}:${s}`);
  });
  return found.flat();
}

/**
 * A snapshot gone from the disk and libvirt. Only libvirt's record is dropped when the disk
 * no longer holds it (qemu-img says so); any other failure is said, with its cause: the
 * memory state would stay in the overlay, unseen.
 */
async function dropSnapshot(ctx: LabContext, node: string, domain: string, snapshot: string): Promise<void> {
  if (!(await snapshotNames(ctx.virsh, domain)).includes(snapshot)) return;
  try {
    await deleteSnapshot(ctx.virsh, domain, snapshot);
  } catch (err) {
    const disk = path.join(ctx.dir.disks, `${node}.qcow2`);
    const info = await imageInfo(disk, ctx.signal, 'qcow2').catch(() => undefined);
    if (info && !info.snapshots?.some((s) => s.name === snapshot))
      return deleteSnapshot(ctx.virsh, domain, snapshot, { metadataOnly: true });
    throw new LabError(`could not delete snapshot ${snapshot} of ${node}`, {
      cause: err,
      hint: `its memory state stays in ${disk}; lab down removes it with the lab`,
    });
  }
}

/** What libvirt and the disks hold of every node now (for save and restore). */
export function observeLab(ctx: LabContext): Promise<Map<string, ObservedNode>> {
  return observeNodes(
    ctx,
    new Map(ctx.lab.nodes.map((n) => [n.name, ctx.dir.nodePaths(n, imageLocation(n.template))] as const)),
  );
}
