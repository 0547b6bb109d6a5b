import { mkdtempSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { LockedError, acquireLock, hostNetworksLockFile, readHolder } from '../../../lab/store/lock.js';

const holderScript = path.join(import.meta.dirname, 'lock-holder.ts');

/** A lock held by another process (locks are per open file: test them across processes). */
async function holdInChild(file: string) {
  const child = execa(process.execPath, ['--import', 'tsx', holderScript, file], { reject: false });
  const deadline = Date.now() + 20_000;
  // The holder writes its pid into the lock file once it holds the lock.
  while ((await readHolder(file))?.pid !== child.pid) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error('the holder did not take the lock');
    await new Promise((r) => setTimeout(r, 50));
  }
  // Wrapped: a returned thenable would be awaited (until the holder exits).
  return { child };
}

describe('per-lab lock', () => {
  it('a second taker fails at once naming the holder; SIGKILL of the holder frees it at once', async () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'lab-lock-')), 'locks', 't.lock');
    const { child } = await holdInChild(file);
    const t0 = performance.now();
    const err = await acquireLock(file, 'lab t').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(LockedError);
    expect(performance.now() - t0).toBeLessThan(1000);
    const msg = (err as LockedError).message;
    expect(msg).toMatch(new RegExp(`^lab t is locked by pid ${child.pid} \\(`));
    expect(msg).toContain(`@${os.hostname()}`);
    expect((err as LockedError).exitCode).toBe(75);
    expect(statSync(file).mode & 0o777).toBe(0o600);

    child.kill('SIGKILL');
    await child;
    const t1 = performance.now();
    const lock = await acquireLock(file, 'lab t');
    expect(performance.now() - t1).toBeLessThan(1000);
    expect((await readHolder(file))?.pid).toBe(process.pid);
    await lock.release();
    expect(await readHolder(file)).toBeUndefined();
    // Released: it can be taken again.
    await (await acquireLock(file, 'lab t')).release();
  }, 30_000);

  it('--lock-timeout waits for the holder and gets the lock when it goes away', async () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'lab-lock-')), 't.lock');
    const { child } = await holdInChild(file);
    setTimeout(() => child.kill('SIGKILL'), 700);
    const t0 = performance.now();
    const lock = await acquireLock(file, 'lab t', { timeoutMs: 20_000 });
    const waited = performance.now() - t0;
    expect(waited).toBeGreaterThan(500);
    expect(waited).toBeLessThan(10_000);
    await lock.release();
  }, 30_000);
});

describe('host-wide network lock', () => {
  it('is one file for every state root and user (in /run/lock, or LAB_LOCK_DIR), lockable by all, writable by its maker only: 0644 under any umask', async () => {
    const saved = process.env.LAB_LOCK_DIR;
    try {
      delete process.env.LAB_LOCK_DIR;
      const savedState = process.env.LAB_STATE_DIR;
      process.env.LAB_STATE_DIR = '/tmp/one-root';
      const a = hostNetworksLockFile();
      process.env.LAB_STATE_DIR = '/tmp/another-root';
      expect(hostNetworksLockFile()).toBe(a);
      if (savedState === undefined) delete process.env.LAB_STATE_DIR;
      else process.env.LAB_STATE_DIR = savedState;
      expect(a).toBe('/run/lock/lab-host-networks.lock');

      const dir = mkdtempSync(path.join(os.tmpdir(), 'lab-lock-'));
      process.env.LAB_LOCK_DIR = dir;
      const file = hostNetworksLockFile();
      expect(file).toBe(path.join(dir, 'host-networks.lock'));
      const old = process.umask(0o077);
      try {
        const lock = await acquireLock(file, "this host's lab networks", { shared: true });
        expect(statSync(file).mode & 0o777).toBe(0o644);
        // Another process is refused while it is held, and takes it once it is released.
        const other = await acquireLock(file, "this host's lab networks").then(
          () => 'taken',
          (e: unknown) => e,
        );
        expect(other).toBeInstanceOf(LockedError);
        await lock.release();
        await (await acquireLock(file, "this host's lab networks", { shared: true })).release();
      } finally {
        process.umask(old);
      }
    } finally {
      if (saved === undefined) delete process.env.LAB_LOCK_DIR;
      else process.env.LAB_LOCK_DIR = saved;
    }
  });
});
