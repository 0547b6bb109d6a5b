import { createHash } from 'node:crypto';
import { constants, existsSync, lstatSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawnProgram, type Child } from '../runtime/exec.js';
import { LabError } from '../errors.js';
import { stateRoot } from './lab-dir.js';
import { UnsafePathError, ensureOwnDir, myUid, openChecked, unsafeDir } from './safe-path.js';

/** Who holds a lock: written into the lock file by the holder, read by whoever waits. */
export interface LockHolder {
  pid: number;
  user: string;
  host: string;
  command: string;
  started: string;
}

/** The lock is held by another process. Exit code 75 (EX_TEMPFAIL): try again later. */
export class LockedError extends LabError {
  override exitCode = 75;
  constructor(
    readonly what: string,
    readonly holder: LockHolder | undefined,
    waitedMs: number,
  ) {
    super(
      `${what} is locked by ${holder ? describeHolder(holder) : 'another lab process'}${
        waitedMs > 0 ? ` (waited ${Math.round(waitedMs / 1000)} s)` : ''
      }`,
      {
        hint: 'wait for it to finish, or pass --lock-timeout 10m to wait for it; lab status and lab ssh work meanwhile',
      },
    );
  }
}

export function describeHolder(h: LockHolder, now = Date.now()): string {
  const age = Math.max(0, Math.round((now - Date.parse(h.started)) / 1000));
  return `pid ${h.pid} (${h.user}@${h.host}: ${h.command}, since ${h.started}, ${age} s ago)`;
}

/**
 * Where the locks live: a runtime folder (tmpfs, gone at reboot), one file per lab and
 * state root. Never inside the lab's own folder: `lab down` deletes that folder, and a
 * deleted lock file would let a waiting process and a new one both "hold" the lock.
 * Root's are in /run/lab/locks, which only root can write on the way to (not /run/lock,
 * where any user could make the folder first); another user's in its own runtime folder
 * (XDG_RUNTIME_DIR, 0700), or in its state folder when it has none. S10.
 */
export function lockDir(): string {
  if (process.env.LAB_LOCK_DIR) return path.resolve(process.env.LAB_LOCK_DIR);
  if (myUid() === 0) return '/run/lab/locks';
  const runtime = process.env.XDG_RUNTIME_DIR;
  if (runtime && isPrivateRuntimeDir(runtime)) return path.join(runtime, 'lab', 'locks');
  return path.join(stateRoot(), '.locks');
}

/** XDG_RUNTIME_DIR as the XDG spec has it: this user's own, 0700, on a way nobody else can change. */
function isPrivateRuntimeDir(dir: string): boolean {
  if (!path.isAbsolute(dir) || unsafeDir(dir)) return false;
  try {
    const st = lstatSync(dir);
    return st.isDirectory() && st.uid === myUid() && (st.mode & 0o077) === 0;
  } catch {
    return false;
  }
}

export function lockFileFor(name: string): string {
  const root = createHash('sha256').update(stateRoot()).digest('hex').slice(0, 12);
  return path.join(lockDir(), `${root}-${name}.lock`);
}

/**
 * One lock for the whole host, whoever runs lab and with whatever state root: the managed
 * networks of all labs share the host's routes and bridge names, so creating one is
 * serialized across labs and users. It lives in /run/lock (tmpfs, sticky, writable by
 * all): its maker's, 0644, lockable by every user (flock needs only a read-only
 * descriptor), written by none but its maker (see `acquireLock`'s `shared`).
 */
export function hostNetworksLockFile(): string {
  if (process.env.LAB_LOCK_DIR)
    return path.join(path.resolve(process.env.LAB_LOCK_DIR), 'host-networks.lock');
  if (existsSync('/run/lock')) return '/run/lock/lab-host-networks.lock';
  return path.join(lockDir(), 'host-networks.lock');
}

/** A held lock; `release()` gives it back (and the kernel does when the process dies). */
export interface Lock {
  file: string;
  release(): Promise<void>;
}

/** Held locks, kept referenced: a descriptor closed by the garbage collector would free its lock. */
const held = new Set<FileHandle>();

/**
 * Takes an exclusive lock with flock(2) semantics on a descriptor this process keeps
 * open: `flock(1)` is handed that descriptor (as its fd 3), locks it and exits; the lock
 * belongs to the open file, so it is held until this process closes it or ends in any
 * way (even SIGKILL). No PID file, no stale lock, and no second open of the path.
 * `timeoutMs` 0 fails at once (Terraform's -lock-timeout default), else it waits.
 *
 * The file is opened safely (safe-path.ts): a private lock (default) in a folder of this
 * user's own (0700, or `dirMode`: the image cache's stays readable by QEMU's user), the
 * file 0600 and this user's; a `shared` one (the host-wide lock, in
 * a sticky folder) may be another user's file, then locked read-only and never written.
 */
export async function acquireLock(
  file: string,
  what: string,
  opts: { timeoutMs?: number; signal?: AbortSignal; shared?: boolean; dirMode?: number } = {},
): Promise<Lock> {
  const dir = path.dirname(file);
  if (opts.shared) {
    const why = unsafeDir(dir);
    if (why) throw new UnsafePathError(dir, why);
    if (!existsSync(dir)) ensureOwnDir(dir, 0o755);
  } else ensureOwnDir(dir, opts.dirMode ?? 0o700);
  const { fh, writable } = await openChecked(file, { mode: opts.shared ? 0o644 : 0o600, own: !opts.shared });
  try {
    const timeoutMs = opts.timeoutMs ?? 0;
    const started = performance.now();
    const wait =
      timeoutMs > 0 ? ['--wait', String(Math.max(1, Math.ceil(timeoutMs / 1000)))] : ['--nonblock'];
    const child: Child = spawnProgram('flock', ['--exclusive', ...wait, '--conflict-exit-code', '75', '3'], {
      // flock(1) gets the lock's descriptor as its fd 3, nothing else of ours. (execa's
      // types name parent descriptors 3-9 only; it hands any number to Node's spawn.)
      stdio: ['ignore', 'ignore', 'pipe', fh.fd as 3],
      track: false,
      ...(opts.signal ? { cancelSignal: opts.signal } : {}),
    });
    const r = await child;
    if (r.exitCode === 75)
      throw new LockedError(what, await readHolder(file), timeoutMs > 0 ? performance.now() - started : 0);
    if (r.exitCode !== 0) throw lockFailure(file, r.exitCode, r.isCanceled, String(r.stderr ?? ''));
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw err;
  }
  held.add(fh);
  if (writable) await writeHolder(fh, !!opts.shared);
  return {
    file,
    async release() {
      if (!held.delete(fh)) return;
      if (writable) await fh.truncate(0).catch(() => undefined);
      await fh.close();
    },
  };
}

function lockFailure(file: string, code: number | undefined, cancelled: boolean, stderr: string): Error {
  if (cancelled) return new LabError(`interrupted while waiting for the lock ${file}`);
  return new LabError(
    `could not take the lock ${file}: flock exited with ${code ?? 'no code'}${stderr.trim() ? ` (${stderr.trim()})` : ''}`,
    { hint: 'flock(1) comes with util-linux' },
  );
}

/** This user's name, or its uid where it has no entry in the passwd database. */
function userName(): string {
  try {
    return os.userInfo().username;
  } catch {
    return `uid ${myUid()}`;
  }
}

/**
 * Says who holds the lock, through its descriptor. A shared lock's file is readable by
 * every user: it names the command only (`lab up`), not its arguments (paths, names).
 */
async function writeHolder(fh: FileHandle, shared: boolean): Promise<void> {
  const args = process.argv.slice(2);
  const holder: LockHolder = {
    pid: process.pid,
    user: userName(),
    host: os.hostname(),
    command: ['lab', ...(shared ? args.slice(0, 1) : args)].join(' '),
    started: new Date().toISOString(),
  };
  await fh.truncate(0);
  await fh.write(`${JSON.stringify(holder)}\n`, 0);
}

export async function readHolder(file: string): Promise<LockHolder | undefined> {
  // Never through a symlink, never blocked on a FIFO, never more than a holder's size.
  const fh = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch(
    () => undefined,
  );
  if (!fh) return undefined;
  try {
    if (!(await fh.stat()).isFile()) return undefined;
    const buf = Buffer.alloc(4096);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    const h = JSON.parse(buf.subarray(0, bytesRead).toString('utf8')) as Partial<LockHolder>;
    return typeof h.pid === 'number' && typeof h.started === 'string' ? (h as LockHolder) : undefined;
  } catch {
    return undefined;
  } finally {
    await fh.close();
  }
}
