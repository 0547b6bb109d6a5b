/**
 * The lab's checkpoints, as lab knows them: `private/checkpoints.json` (0600, in the 0700
 * private folder: it holds the lab's secret as it was). A checkpoint exists for lab only
 * once its record is written, after every node's snapshot was taken: a save killed half
 * way leaves snapshots that no record names, which the next checkpoint command deletes.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeDurable } from './state-file.js';

/** One node as it was when the checkpoint was taken: what a restore brings back. */
export interface CheckpointNode {
  domain: string;
  uuid: string;
  /** The provisioning hash, memory and vCPUs of the definition the snapshot holds. */
  configHash: string;
  memoryMiB: number;
  vcpus: number;
  /** The overlay's inode: a reset or replace makes a new file (and loses the snapshot). */
  diskIno: number;
  /** Size of the memory state saved in the overlay, from qemu-img. */
  stateBytes?: number;
}

export interface Checkpoint {
  name: string;
  /** libvirt's name for each node's snapshot. */
  snapshot: string;
  /** ISO time of the save. */
  created: string;
  /** How long the lab was paused for the save, in ms. */
  pausedMs: number;
  /** sha256 of the Labfile (LabSpec.labfileHash) then. */
  labfileHash: string;
  /** The lab's secret then (hex): every key is derived from it, so a restore pins them again. */
  secret: string;
  nodes: Record<string, CheckpointNode>;
}

export interface CheckpointBook {
  version: 1;
  checkpoints: Record<string, Checkpoint>;
  /** The checkpoint the lab was last restored from, and when (ISO time). */
  restored?: { name: string; at: string; nodes?: string[] };
}

/** libvirt's snapshot name for a checkpoint: prefixed, so lab finds its own (and orphans). */
export const SNAPSHOT_PREFIX = 'lab-ckpt-';
export const snapshotName = (checkpoint: string) => `${SNAPSHOT_PREFIX}${checkpoint}`;

/** A checkpoint name: like a lab's, short and plain (it names libvirt snapshots). */
export const CHECKPOINT_NAME = /^[a-z0-9][a-z0-9._-]{0,39}$/;

export const checkpointsFile = (privateDir: string) => path.join(privateDir, 'checkpoints.json');

/** The book; empty when there is none, or when it is not one lab can read (never guessed at). */
export async function readCheckpoints(privateDir: string): Promise<CheckpointBook> {
  try {
    const book = JSON.parse(await readFile(checkpointsFile(privateDir), 'utf8')) as Partial<CheckpointBook>;
    if (book.version === 1 && typeof book.checkpoints === 'object' && book.checkpoints !== null)
      return book as CheckpointBook;
  } catch {
    /* none, or damaged */
  }
  return { version: 1, checkpoints: {} };
}

/** Writes the book durably (new file, fsync, rename, folder fsync): whole or not at all. */
export async function writeCheckpoints(privateDir: string, book: CheckpointBook): Promise<void> {
  await writeDurable(checkpointsFile(privateDir), `${JSON.stringify(book, null, 2)}\n`, 0o600);
}
