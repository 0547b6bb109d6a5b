/**
 * Folders and files that no other user can redirect (S10). A lab run as root opens lock
 * files in folders such as /run/lock, which every user may write to: a folder planted
 * there first, or a symlink or hard link at a lock's name, must never make lab open,
 * truncate or chmod a file it did not mean (think /etc/shadow).
 *
 * The rules, as OpenSSH's safe_path and systemd's chase apply them:
 * - every folder from / down is a real folder owned by root or this user, not writable by
 *   group or others unless sticky (as /tmp and /run/lock: there only an entry's owner can
 *   remove or rename it); a symlink on the way is followed only when root owns it (as
 *   /var/run -> /run);
 * - a file is opened with O_NOFOLLOW (a symlink fails), O_NONBLOCK (a FIFO cannot hang
 *   the open), then checked on its descriptor: a regular file, one link (no hard link to
 *   somewhere else), and changed only through that descriptor, never by path again.
 */
import { constants, lstatSync, mkdirSync, readlinkSync, chmodSync, type Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { HostError } from '../errors.js';

// libuv opens every file close-on-exec: a lock's descriptor reaches a child only when handed to it.
const { O_RDWR, O_RDONLY, O_CREAT, O_NOFOLLOW, O_NONBLOCK } = constants;

/** This process's user id (0 where there is none, as on Windows, which lab does not run on). */
export const myUid = (): number => (typeof process.getuid === 'function' ? process.getuid() : 0);

/** Refused: a folder or file another user could have planted or redirected. Exit 1. */
export class UnsafePathError extends HostError {
  constructor(
    readonly file: string,
    why: string,
  ) {
    super(`refusing ${file}: ${why}`, {
      hint: `another user may have planted it: look at it (ls -la ${path.dirname(file)}), remove it if it is not lab's, and run again`,
    });
  }
}

/**
 * Why `dir` (absolute) is unsafe for this user, or undefined when no other user can replace
 * it or any folder on its way. Each folder that exists is checked; a missing one ends the
 * walk (the caller creates it). Reads the file system only.
 */
export function unsafeDir(dir: string, uid = myUid()): string | undefined {
  let rest = path.resolve(dir).split('/').filter(Boolean);
  let at = '/';
  let links = 0;
  for (;;) {
    const st = lstatOrUndefined(at);
    if (!st) return undefined;
    if (st.isSymbolicLink()) {
      if (st.uid !== 0) return `${at} is a symlink owned by uid ${st.uid}, not by root`;
      if (++links > 40) return `${dir}: too many symlinks on the way`;
      const target = path.resolve(path.dirname(at), readlinkSync(at));
      rest = [...target.split('/').filter(Boolean), ...rest];
      at = '/';
      continue;
    }
    const why = unsafeFolder(at, st, uid);
    if (why) return why;
    const next = rest.shift();
    if (next === undefined) return undefined;
    at = path.join(at, next);
  }
}

/** One folder's own offence, if any. Pure. */
export function unsafeFolder(
  at: string,
  st: Pick<Stats, 'uid' | 'mode' | 'isDirectory'>,
  uid: number,
): string | undefined {
  if (!st.isDirectory()) return `${at} is not a folder`;
  if (st.uid !== 0 && st.uid !== uid)
    return `${at} is owned by uid ${st.uid}, neither root nor this user (${uid})`;
  const sticky = (st.mode & 0o1000) !== 0;
  if ((st.mode & 0o022) !== 0 && !sticky)
    return `${at} is writable by ${st.mode & 0o002 ? 'every user' : 'its group'} (mode ${(st.mode & 0o7777).toString(8)})`;
  return undefined;
}

/**
 * Makes `dir` and the folders missing on its way (mode `mode`), then checks the whole way;
 * the last folder must be this user's own (a folder of root's will not do for another
 * user), and is made `mode` when it is looser. Throws UnsafePathError.
 */
export function ensureOwnDir(dir: string, mode = 0o700, uid = myUid()): void {
  const before = unsafeDir(dir, uid);
  if (before) throw new UnsafePathError(dir, before);
  mkdirSync(dir, { recursive: true, mode });
  const why = unsafeDir(dir, uid);
  if (why) throw new UnsafePathError(dir, why);
  const st = lstatSync(dir);
  if (st.uid !== uid) throw new UnsafePathError(dir, `owned by uid ${st.uid}, not by this user (${uid})`);
  // Ours, on a way nobody else can change: tightening it by path cannot be redirected.
  if ((st.mode & 0o777 & ~mode) !== 0) chmodSync(dir, mode);
}

/**
 * Opens (creating when missing) a lock or record file without following a symlink, and
 * checks it on its descriptor: a regular file with one link. `own`: it must be this
 * user's, and is made `mode` (through the descriptor) when looser. Otherwise a file of
 * another user is opened read-only, to be locked, never written.
 */
export async function openChecked(
  file: string,
  opts: { mode: number; own: boolean; uid?: number },
): Promise<{ fh: FileHandle; writable: boolean; st: Stats }> {
  const uid = opts.uid ?? myUid();
  const flags = O_NOFOLLOW | O_NONBLOCK;
  let fh: FileHandle;
  let writable = true;
  try {
    fh = await open(file, O_RDWR | O_CREAT | flags, opts.mode);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'EMLINK') throw new UnsafePathError(file, 'it is a symlink');
    if (code !== 'EACCES' && code !== 'EPERM') throw err;
    if (opts.own) throw new UnsafePathError(file, "it is not this user's to write");
    // Another user's lock file, in a sticky folder: lockable read-only, never changed.
    try {
      fh = await open(file, O_RDONLY | flags);
    } catch (again) {
      const c = (again as NodeJS.ErrnoException).code;
      if (c === 'ELOOP' || c === 'EMLINK') throw new UnsafePathError(file, 'it is a symlink');
      throw again;
    }
    writable = false;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new UnsafePathError(file, 'it is not a regular file');
    if (st.nlink !== 1) throw new UnsafePathError(file, `it has ${st.nlink} hard links (one expected)`);
    if (st.uid !== uid) {
      if (opts.own) throw new UnsafePathError(file, `owned by uid ${st.uid}, not by this user (${uid})`);
      if (writable) {
        // Root could write another user's file: it does not.
        await fh.close();
        fh = await open(file, O_RDONLY | flags);
        const again = await fh.stat();
        if (!again.isFile() || again.nlink !== 1 || again.ino !== st.ino)
          throw new UnsafePathError(file, 'it changed while it was opened');
        writable = false;
      }
    } else if ((st.mode & 0o777) !== opts.mode) {
      await fh.chmod(opts.mode);
    }
    return { fh, writable, st };
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw err;
  }
}

function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
