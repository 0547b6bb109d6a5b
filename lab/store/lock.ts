import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { chmod, open, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawnProgram, type Child } from '../runtime/exec.js';
import { LabError } from '../errors.js';
import { stateRoot } from './lab-dir.js';

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
 * Where the locks live: a runtime directory (tmpfs, gone at reboot), one file per lab and
 * state root. Never inside the lab's own folder: `lab down` deletes that folder, and a
 * deleted lock file would let a waiting process and a new one both "hold" the lock.
 */
export function lockDir(): string {
  if (process.env.LAB_LOCK_DIR) return path.resolve(process.env.LAB_LOCK_DIR);
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (isRoot) return '/run/lock/lab';
  if (process.env.XDG_RUNTIME_DIR) return path.join(process.env.XDG_RUNTIME_DIR, 'lab', 'locks');
  return path.join(stateRoot(), '.locks');
}

export function lockFileFor(name: string): string {
  const root = createHash('sha256').update(stateRoot()).digest('hex').slice(0, 12);
  return path.join(lockDir(), `${root}-${name}.lock`);
}

/**
 * One lock for the whole host, whoever runs lab and with whatever state root: the managed
 * networks of all labs share the host's routes and bridge names, so creating one is
 * serialized across labs and users. /run/lock (tmpfs, sticky, writable by all) holds it,
 * readable and lockable by every user (see `acquireLock`'s `shared`).
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

/**
 * Takes an exclusive lock with flock(2) semantics, held by a `flock(1)` child whose
 * command reads our stdin: when this process ends in any way (even SIGKILL), the pipe
 * closes, the child exits and the kernel drops the lock. No PID file, no stale lock.
 * `timeoutMs` 0 fails at once (Terraform's -lock-timeout default), else it waits.
 */
export async function acquireLock(
  file: string,
  what: string,
  opts: { timeoutMs?: number; signal?: AbortSignal; shared?: boolean } = {},
): Promise<Lock> {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  // Create it 0600 before flock(1) does (it would create it 0644 under umask 022); a lock
  // shared by every user of the host is 0666 whatever the umask (it holds no secret).
  const fh = await open(file, 'a', opts.shared ? 0o666 : 0o600);
  if (opts.shared && ((await fh.stat()).mode & 0o777) !== 0o666)
    await chmod(file, 0o666).catch(() => undefined);
  await fh.close();
  const timeoutMs = opts.timeoutMs ?? 0;
  const started = performance.now();
  const wait = timeoutMs > 0 ? ['--wait', String(Math.max(1, Math.ceil(timeoutMs / 1000)))] : ['--nonblock'];
  const child: Child = spawnProgram(
    'flock',
    ['--exclusive', ...wait, '--close', '--conflict-exit-code', '75', file, 'cat'],
    {
      stdin: 'pipe',
      stdout: 'pipe',
      stderr: 'pipe',
      buffer: false,
      track: false,
      ...(opts.signal ? { cancelSignal: opts.signal } : {}),
    },
  );
  // cat echoes this line only once flock(1) has the lock and ran it.
  child.stdin!.write('locked\n');
  const acquired = await new Promise<boolean>((resolve, reject) => {
    child.stdout!.once('data', () => resolve(true));
    child.then(
      (r) => (r.exitCode === 75 ? resolve(false) : reject(lockFailure(file, r.exitCode, r.isCanceled))),
      (err: unknown) => reject(err instanceof Error ? err : new Error(String(err))),
    );
  });
  if (!acquired) {
    throw new LockedError(what, await readHolder(file), timeoutMs > 0 ? performance.now() - started : 0);
  }
  await writeHolder(file);
  return {
    file,
    async release() {
      await truncateHolder(file);
      child.stdin!.end();
      await child;
    },
  };
}

function lockFailure(file: string, code: number | undefined, cancelled: boolean): Error {
  if (cancelled) return new LabError(`interrupted while waiting for the lock ${file}`);
  return new LabError(`could not take the lock ${file}: flock exited with ${code ?? 'no code'}`, {
    hint: 'flock(1) comes with util-linux',
  });
}

async function writeHolder(file: string): Promise<void> {
  const holder: LockHolder = {
    pid: process.pid,
    user: os.userInfo().username,
    host: os.hostname(),
    command: ['lab', ...process.argv.slice(2)].join(' '),
    started: new Date().toISOString(),
  };
  const fh = await open(file, 'r+');
  try {
    await fh.truncate(0);
    await fh.write(`${JSON.stringify(holder)}\n`, 0);
  } finally {
    await fh.close();
  }
}

async function truncateHolder(file: string): Promise<void> {
  const fh = await open(file, 'r+').catch(() => undefined);
  await fh?.truncate(0);
  await fh?.close();
}

export async function readHolder(file: string): Promise<LockHolder | undefined> {
  try {
    const h = JSON.parse(await readFile(file, 'utf8')) as Partial<LockHolder>;
    return typeof h.pid === 'number' && typeof h.started === 'string' ? (h as LockHolder) : undefined;
  } catch {
    return undefined;
  }
}
