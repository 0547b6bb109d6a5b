// What the image cache holds besides the templates' images: the work folders of builds
// that were cut short, partial downloads in an entry's quarantine, and entries no template
// names any more (an older template, a renamed one). `lab image list` shows them, `lab
// image prune` removes those nothing uses. Nothing here follows a symlink.
import {
  closeSync,
  constants,
  existsSync,
  lstatSync,
  openSync,
  readdirSync,
  readSync,
  type Stats,
} from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { cacheRoot, stateRoot } from '../../store/lab-dir.js';
import { acquireLock, LockedError } from '../../store/lock.js';
import { UnsafePathError, unsafeDir } from '../../store/safe-path.js';

export type LeftoverKind = 'build-work' | 'partial-download' | 'unknown-entry';

export interface Leftover {
  path: string;
  kind: LeftoverKind;
  bytes: number;
  /** Why it must stay (a build or download holds its lock, a lab's overlay is backed by it). */
  inUse?: string;
}

/** The cache entries the templates name: folder names under the cache root. */
export type KnownEntries = ReadonlySet<string>;

const BUILD_WORK = /^\.(.+)\.build\.[A-Za-z0-9]{6,}$/;

/** Every leftover in the cache; `known` are the entry names the templates use. */
export async function findLeftovers(known: KnownEntries, root = cacheRoot()): Promise<Leftover[]> {
  if (!existsSync(root)) return [];
  const backing = backingFiles();
  const out: Leftover[] = [];
  for (const name of readdirSync(root).sort()) {
    const at = path.join(root, name);
    const st = lstatSync(at);
    if (!st.isDirectory()) continue; // locks (*.lock) and anything else that is not an entry
    const work = BUILD_WORK.exec(name);
    if (work) {
      const busy = await lockHeld(`${path.join(root, work[1] as string)}.lock`);
      out.push({
        path: at,
        kind: 'build-work',
        bytes: sizeOf(at),
        ...(busy ? { inUse: 'a build of this image is running' } : {}),
      });
      continue;
    }
    if (name === '.quarantine') continue;
    if (!known.has(name)) {
      const user = [...backing].find((b) => b === at || b.startsWith(`${at}/`));
      out.push({
        path: at,
        kind: 'unknown-entry',
        bytes: sizeOf(at),
        ...(user ? { inUse: `a lab's overlay is backed by ${user}` } : {}),
      });
      continue;
    }
    const q = path.join(at, '.quarantine');
    if (!isDir(q)) continue;
    const entryLocks = readdirSync(at).filter((f) => f.endsWith('.lock'));
    let busy = false;
    for (const l of entryLocks) if (await lockHeld(path.join(at, l))) busy = true;
    for (const f of readdirSync(q).sort()) {
      out.push({
        path: path.join(q, f),
        kind: 'partial-download',
        bytes: sizeOf(path.join(q, f)),
        ...(busy ? { inUse: 'a download of this image is running' } : {}),
      });
    }
  }
  return out;
}

/**
 * Removes the leftovers nothing uses; returns what it removed. The cache root must be a
 * folder no other user can write to, or lab could be led to delete elsewhere.
 */
export async function pruneLeftovers(items: Leftover[], root = cacheRoot()): Promise<Leftover[]> {
  const why = unsafeDir(root);
  if (why) throw new UnsafePathError(root, why);
  const removed: Leftover[] = [];
  for (const l of items) {
    if (l.inUse) continue;
    if (path.relative(root, l.path).startsWith('..')) continue;
    await rm(l.path, { recursive: true, force: true });
    removed.push(l);
  }
  return removed;
}

/** Whether another process holds the lock `file` (a lock that does not exist is not held). */
async function lockHeld(file: string): Promise<boolean> {
  if (!existsSync(file)) return false;
  try {
    const lock = await acquireLock(file, file, { dirMode: 0o755 });
    await lock.release();
    return false;
  } catch (err) {
    if (err instanceof LockedError) return true;
    throw err;
  }
}

/** Bytes under `p`, counted without following symlinks (du --apparent-size). */
export function sizeOf(p: string): number {
  let st: Stats;
  try {
    st = lstatSync(p);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.isFile() ? st.size : 0;
  let n = 0;
  for (const f of readdirSync(p)) n += sizeOf(path.join(p, f));
  return n;
}

function isDir(p: string): boolean {
  try {
    return lstatSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** The backing files of every overlay of this user's labs (read from the qcow2 headers). */
function backingFiles(): Set<string> {
  return new Set(overlays().map((o) => o.backing));
}

/** Every overlay of this user's labs with the file it is backed by. */
function overlays(): { overlay: string; backing: string }[] {
  const out: { overlay: string; backing: string }[] = [];
  const labs = stateRoot();
  if (!isDir(labs)) return out;
  for (const lab of readdirSync(labs)) {
    const disks = path.join(labs, lab, 'disks');
    if (!isDir(disks)) continue;
    for (const f of readdirSync(disks)) {
      if (!f.endsWith('.qcow2')) continue;
      const b = qcow2BackingSync(path.join(disks, f));
      if (b) out.push({ overlay: path.join(disks, f), backing: path.resolve(disks, b) });
    }
  }
  return out;
}

/** The overlays of this user's labs backed by a file in `dir` (a cache entry). */
export function overlaysOn(dir: string): string[] {
  const at = path.resolve(dir);
  return overlays()
    .filter((o) => o.backing === at || o.backing.startsWith(`${at}/`))
    .map((o) => o.overlay);
}

/**
 * The backing file a qcow2 header names, or undefined (not qcow2, none, unreadable).
 * Header: magic "QFI\xfb", version u32, backing_file_offset u64, backing_file_size u32 (BE).
 */
export function qcow2Backing(header: Buffer, file: Buffer | undefined): string | undefined {
  if (header.length < 20 || header.readUInt32BE(0) !== 0x514649fb) return undefined;
  const offset = header.readBigUInt64BE(8);
  const size = header.readUInt32BE(16);
  if (offset === 0n || size === 0 || size > 4096 || !file) return undefined;
  return file.subarray(0, size).toString('utf8');
}

function qcow2BackingSync(file: string): string | undefined {
  try {
    const fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      const header = Buffer.alloc(20);
      readSync(fd, header, 0, 20, 0);
      if (header.readUInt32BE(0) !== 0x514649fb) return undefined;
      const offset = Number(header.readBigUInt64BE(8));
      const size = header.readUInt32BE(16);
      if (!offset || !size || size > 4096) return undefined;
      const name = Buffer.alloc(size);
      readSync(fd, name, 0, size, offset);
      return qcow2Backing(header, name);
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  }
}
