/**
 * `lab checkpoint save NAME`: every node paused, an internal snapshot with memory of each
 * taken in parallel, every node resumed, then the record written. The nodes resume from
 * one instant, so a restored cluster does too. Killed at any moment, the lab is left
 * running (or paused: the next `lab up` resumes it) and no checkpoint that `list` offers.
 */
import { statfs, stat } from 'node:fs/promises';
import { HostError, LabError, describeError } from '../errors.js';
import { imageInfo } from '../providers/qemu-img.js';
import { createSnapshot, deleteSnapshot, resume, suspend } from '../providers/snapshots.js';
import { failpoint } from '../runtime/failpoint.js';
import { startPauseGuard } from './pause-guard.js';
import { mapLimit } from '../runtime/limit.js';
import {
  readCheckpoints,
  restoreUnfinished,
  snapshotName,
  writeCheckpoints,
  type Checkpoint,
  type CheckpointNode,
} from '../store/checkpoints.js';
import { deleteCheckpoint, deleteOrphans, diskIdentity, observeLab } from './checkpoints.js';
import type { LabContext } from './context.js';

export interface SaveResult {
  name: string;
  /** From the first pause to the last resume. */
  pausedMs: number;
  ms: number;
  sizeBytes: number;
  nodes: string[];
}

/** Room the memory states need beyond the guests' RAM (qcow2 metadata, the disks' growth). */
const SPARE_BYTES = 512 * 1024 ** 2;

/** Saves the running lab as checkpoint `name`; `force` replaces one of that name. */
export async function saveCheckpoint(
  ctx: LabContext,
  name: string,
  opts: { force?: boolean } = {},
): Promise<SaveResult> {
  const started = performance.now();
  const book = await readCheckpoints(ctx.dir.private);
  const unfinished = restoreUnfinished(book);
  if (unfinished) throw unfinished;
  if (book.checkpoints[name] && !opts.force)
    throw new LabError(`lab ${ctx.lab.name} already has a checkpoint ${name}`, {
      hint: `lab checkpoint save ${name} --force replaces it; lab checkpoint list shows them`,
    });
  const secret = await ctx.dir.secret(false);
  if (!secret) throw new LabError(`lab ${ctx.lab.name} is not up`, { hint: 'lab up first' });
  const observed = await observeLab(ctx);
  const notRunning = ctx.lab.nodes.filter((n) => observed.get(n.name)?.state !== 'running');
  if (notRunning.length)
    throw new LabError(
      `a checkpoint is of a running lab: ${notRunning.map((n) => `${n.name} is ${observed.get(n.name)?.state ?? 'missing'}`).join(', ')}`,
      { hint: 'lab up first (it also resumes a paused node)' },
    );
  const foreign = ctx.lab.nodes.filter((n) => !observed.get(n.name)?.owned);
  if (foreign.length) throw new LabError(`not this lab's: ${foreign.map((n) => n.domain).join(', ')}`);
  await checkRoom(ctx);
  await deleteOrphans(ctx, book);
  if (book.checkpoints[name]) await deleteCheckpoint(ctx, name);
  const snapshot = snapshotName(name);
  const pausedMs = await snapshotAll(ctx, name, snapshot);
  const nodes = await mapLimit(ctx.lab.nodes, 8, async (node): Promise<[string, CheckpointNode]> => {
    const o = observed.get(node.name)!;
    const disk = ctx.dir.nodePaths(node, {}).disk;
    const info = await imageInfo(disk, ctx.signal, 'qcow2').catch(() => undefined);
    const stateBytes = info?.snapshots?.find((s) => s.name === snapshot)?.vmStateBytes;
    return [
      node.name,
      {
        domain: node.domain,
        uuid: o.uuid ?? node.uuid,
        configHash: o.configHash ?? '',
        memoryMiB: o.memoryMiB ?? node.memoryMiB,
        vcpus: o.vcpus ?? node.cpus,
        ...diskIdentity(await stat(disk, { bigint: true })),
        ...(stateBytes !== undefined ? { stateBytes } : {}),
      },
    ];
  });
  const cp: Checkpoint = {
    name,
    snapshot,
    created: new Date().toISOString(),
    pausedMs: Math.round(pausedMs),
    labfileHash: ctx.lab.labfileHash,
    secret: secret.toString('hex'),
    nodes: Object.fromEntries(nodes),
  };
  failpoint('checkpoint-before-record');
  // Read again: the book is the lab's, and this run holds the lab's lock.
  const latest = await readCheckpoints(ctx.dir.private);
  latest.checkpoints[name] = cp;
  await writeCheckpoints(ctx.dir.private, latest);
  return {
    name,
    pausedMs: cp.pausedMs,
    ms: Math.round(performance.now() - started),
    sizeBytes: nodes.reduce((sum, [, n]) => sum + (n.stateBytes ?? 0), 0),
    nodes: nodes.map(([n]) => n),
  };
}

/**
 * Pause all, snapshot all in parallel, resume all: the resume runs whatever happened, and
 * a snapshot that was taken when another failed is deleted again (all or nothing).
 * Returns how long the lab was paused.
 */
async function snapshotAll(ctx: LabContext, checkpoint: string, snapshot: string): Promise<number> {
  const ev = (node: string, status: 'start' | 'done' | 'fail', detail?: string) =>
    ctx.onEvent({ kind: 'node', node, step: 'checkpoint', status, ...(detail ? { detail } : {}) });
  const domains = ctx.lab.nodes.map((n) => n.domain);
  // Not cut by a signal: the nodes are resumed whatever happens (cmd holds a first Ctrl-C).
  const virsh = ctx.virsh.uncancellable();
  // Killed while the nodes are paused, this process resumes nothing: its guard does.
  const guard = startPauseGuard(virsh.uri, domains);
  const t0 = performance.now();
  const taken: string[] = [];
  let failure: unknown;
  try {
    const paused = await Promise.allSettled(domains.map((d) => suspend(virsh, d)));
    const notPaused = paused.flatMap((p, i) =>
      p.status === 'rejected' ? [`${domains[i]}: ${describeError(p.reason)}`] : [],
    );
    if (notPaused.length)
      throw new LabError(`checkpoint ${checkpoint} not taken: could not pause ${notPaused.join('; ')}`);
    failpoint('checkpoint-after-suspend');
    const outcomes = await Promise.allSettled(
      ctx.lab.nodes.map(async (node) => {
        ev(node.name, 'start', 'paused, saving memory and disk state');
        await createSnapshot(virsh, node.domain, { name: snapshot, lab: ctx.lab.name, checkpoint });
        taken.push(node.domain);
        failpoint('checkpoint-after-snapshot', node.name);
        ev(node.name, 'done');
      }),
    );
    const failed = outcomes.flatMap((o, i) =>
      o.status === 'rejected' ? [[ctx.lab.nodes[i]!, o.reason] as const] : [],
    );
    if (failed.length) {
      for (const [node, reason] of failed) ev(node.name, 'fail', describeError(reason));
      failure = new LabError(
        `checkpoint ${checkpoint} not taken: ${failed.map(([n, r]) => `${n.name}: ${describeError(r)}`).join('; ')}`,
        { hint: 'the lab runs on as it was; nothing of the checkpoint is kept' },
      );
    }
  } catch (err) {
    failure = err;
  }
  // Every node resumed first (the pause is the cost), the failed checkpoint's snapshots after.
  const resumed = await Promise.allSettled(domains.map((d) => resume(virsh, d)));
  const pausedMs = performance.now() - t0;
  guard.stop();
  if (failure) {
    await mapLimit(taken, 8, (d) => deleteSnapshot(virsh, d, snapshot).catch(() => undefined));
    throw failure instanceof Error ? failure : new LabError(describeError(failure));
  }
  const stuck = resumed.flatMap((r, i) =>
    r.status === 'rejected' ? [`${domains[i]}: ${describeError(r.reason)}`] : [],
  );
  if (stuck.length)
    throw new LabError(`checkpoint ${checkpoint} taken, but not every node runs again: ${stuck.join('; ')}`, {
      hint: 'lab up resumes a paused node',
    });
  return pausedMs;
}

/**
 * Refuses up front when the disks' file system cannot hold every guest's memory state:
 * a save that fills the disk would fail half way on the host of every other lab too.
 */
async function checkRoom(ctx: LabContext): Promise<void> {
  const fs = await statfs(ctx.dir.disks);
  const short = roomShortfall(
    fs.bavail * fs.bsize,
    ctx.lab.nodes.map((n) => n.memoryMiB),
    ctx.dir.disks,
  );
  if (short)
    throw new HostError(short, {
      hint: 'free some space, or delete a checkpoint (lab checkpoint delete NAME)',
    });
}

/** What is missing for a checkpoint of guests with these memory sizes, or undefined. Pure. */
export function roomShortfall(
  freeBytes: number,
  memoryMiB: readonly number[],
  where: string,
): string | undefined {
  const need = memoryMiB.reduce((sum, m) => sum + m * 1024 ** 2, 0) + SPARE_BYTES;
  if (freeBytes >= need) return undefined;
  return `not enough disk for a checkpoint: ${gib(freeBytes)} free in ${where}, up to ${gib(need)} needed (each node's memory, and some spare)`;
}

const gib = (bytes: number) => `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
