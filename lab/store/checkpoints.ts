/**
 * The lab's checkpoints, as lab knows them: `private/checkpoints.json` (0600, in the 0700
 * private folder: it holds the lab's secret as it was). A checkpoint exists for lab only
 * once its record is written, after every node's snapshot was taken: a save killed half
 * way leaves snapshots that no record names, which the next checkpoint command deletes.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { LabError } from '../errors.js';
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
  /**
   * The overlay's birth time (statx btime, ns, as a decimal string). With the inode it
   * tells the file apart from a new one: ext4 gives a freed inode number to the next file
   * made, so a replaced overlay can have its predecessor's (CI, 2026-12-07). Absent in
   * checkpoints taken before it was recorded: the inode alone then.
   */
  diskBirthNs?: string;
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
  /**
   * A restore under way, written before its first revert and cleared when every node it
   * reverted runs with its clock set: one that was cut short leaves nodes from two
   * instants, which only the same restore may bring together (lab up refuses them).
   */
  restoring?: { name: string; nodes: string[]; at: string };
}

/** libvirt's snapshot name for a checkpoint: prefixed, so lab finds its own (and orphans). */
export const SNAPSHOT_PREFIX = 'lab-ckpt-';
export const snapshotName = (checkpoint: string) => `${SNAPSHOT_PREFIX}${checkpoint}`;

/** A checkpoint name: like a lab's, short and plain (it names libvirt snapshots). */
export const CHECKPOINT_NAME = /^[a-z0-9][a-z0-9._-]{0,39}$/;

export const checkpointsFile = (privateDir: string) => path.join(privateDir, 'checkpoints.json');

/**
 * The book: empty when there is none, its backup when it is damaged, and an error when
 * neither can be read. Never an empty book for a damaged one: the snapshots that no book
 * names are deleted as a killed save's leftovers.
 */
export async function readCheckpoints(privateDir: string): Promise<CheckpointBook> {
  const file = checkpointsFile(privateDir);
  const main = await readBook(file);
  if (main !== undefined) return main ?? { version: 1, checkpoints: {} };
  const backup = await readBook(`${file}.bak`);
  if (backup) return backup;
  throw new LabError(`${file} is damaged and has no usable backup: the lab's checkpoints are unknown`, {
    hint: 'lab never guesses here: restore the file, or remove it to forget every checkpoint (their snapshots stay in libvirt)',
  });
}

/** The book in `file`: null when there is no file, undefined when it is not a book. */
async function readBook(file: string): Promise<CheckpointBook | null | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    return undefined;
  }
  try {
    const book = JSON.parse(text) as Partial<CheckpointBook>;
    if (book.version === 1 && typeof book.checkpoints === 'object' && book.checkpoints !== null)
      return book as CheckpointBook;
  } catch {
    /* damaged */
  }
  return undefined;
}

/** The refusal of anything but the same restore while one is half done. */
export function restoreUnfinished(book: CheckpointBook): LabError | undefined {
  const r = book.restoring;
  if (!r) return undefined;
  return new LabError(
    `a restore of checkpoint ${r.name} (${r.nodes.join(', ')}) was cut short at ${r.at}: its nodes may be from two different instants`,
    { hint: `lab checkpoint restore ${r.name} finishes it` },
  );
}

/** Writes the book durably (new file, fsync, rename, folder fsync): whole or not at all. */
export async function writeCheckpoints(privateDir: string, book: CheckpointBook): Promise<void> {
  await writeDurable(checkpointsFile(privateDir), `${JSON.stringify(book, null, 2)}\n`, 0o600);
}
