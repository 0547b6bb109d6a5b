// S10: lab's lock folders and files cannot be redirected by another user. As root (CI
// runs as root) and as unprivileged users (setpriv with real uids, no passwd entry
// needed): another user plants folders, symlinks, hard links and FIFOs at every path lab
// opens for a lock, in a sticky folder writable by all, as /run/lock is. The target of
// every plant is a root-only file: it must keep its content and mode.
import {
  chmodSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { LockedError, acquireLock, lockDir, readHolder } from '../../../lab/store/lock.js';
import { UnsafePathError, unsafeDir, unsafeFolder } from '../../../lab/store/safe-path.js';

const isRoot = process.getuid?.() === 0;
const holderScript = path.join(import.meta.dirname, 'lock-holder.ts');
const VICTIM = 65534; // nobody: runs lab
const ATTACKER = 4242; // another unprivileged user, with no passwd entry

/** Runs argv as `uid` (its own group, no supplementary groups). */
const as = (uid: number, argv: string[], opts: { env?: Record<string, string> } = {}) =>
  execa('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', ...argv], {
    reject: false,
    cwd: path.join(import.meta.dirname, '../../..'),
    env: { HOME: '/', ...opts.env },
  });
const tryLockAs = async (uid: number, file: string, kind: 'private' | 'shared') => {
  const r = await as(uid, [process.execPath, '--import', 'tsx', holderScript, file, kind, 'try']);
  expect(r.exitCode, String(r.stderr)).toBe(0);
  return JSON.parse(String(r.stdout).trim().split('\n').at(-1)!) as {
    ok: boolean;
    name?: string;
    message?: string;
  };
};

/** Waits until the child has printed `word`. */
async function said(child: ReturnType<typeof execa>, word: string): Promise<void> {
  let out = '';
  child.stdout?.on('data', (b: Buffer) => (out += String(b)));
  const t0 = Date.now();
  while (!out.includes(word)) {
    if (Date.now() - t0 > 20_000 || child.exitCode !== null)
      throw new Error(`no "${word}" from the child: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

let sticky: string; // as /run/lock: root's, 1777
let target: string; // as /etc/shadow: root's, 0600
const SECRET = 'root:$y$j9T$not-a-real-hash:20000:0:99999:7:::\n';
const targetIntact = () => {
  expect(readFileSync(target, 'utf8')).toBe(SECRET);
  expect(statSync(target).mode & 0o7777).toBe(0o600);
  expect(statSync(target).uid).toBe(0);
};

describe.skipIf(!isRoot)('locks another user tries to redirect (S10)', { timeout: 30_000 }, () => {
  const base = mkdtempSync(path.join(os.tmpdir(), 'lab-lock-attack-'));
  chmodSync(base, 0o755);
  afterAll(() => void execa('rm', ['-rf', base]));
  let n = 0;
  beforeEach(() => {
    sticky = path.join(base, `run-lock-${++n}`);
    mkdirSync(sticky);
    chmodSync(sticky, 0o1777);
    const secretDir = path.join(base, `etc-${n}`);
    mkdirSync(secretDir, { mode: 0o700 });
    target = path.join(secretDir, 'shadow');
    writeFileSync(target, SECRET, { mode: 0o600 });
  });

  it("root's own lock folder is /run/lab/locks: nobody but root can write on the way to it", () => {
    const saved = process.env.LAB_LOCK_DIR;
    delete process.env.LAB_LOCK_DIR;
    try {
      expect(lockDir()).toBe('/run/lab/locks');
      expect(unsafeDir('/run/lab/locks')).toBeUndefined();
      // The old place, /run/lock/lab, is below a folder every user may write to.
      expect(statSync('/run/lock').mode & 0o1777).toBe(0o1777);
    } finally {
      if (saved !== undefined) process.env.LAB_LOCK_DIR = saved;
    }
  });

  it('a lock folder another user made first, with a symlink inside: refused, the target untouched', async () => {
    const planted = path.join(sticky, 'lab');
    expect((await as(ATTACKER, ['mkdir', '-m', '0777', planted])).exitCode).toBe(0);
    expect((await as(ATTACKER, ['ln', '-s', target, path.join(planted, 'x.lock')])).exitCode).toBe(0);
    const err = await acquireLock(path.join(planted, 'x.lock'), 'lab x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsafePathError);
    expect((err as Error).message).toMatch(new RegExp(`owned by uid ${ATTACKER}`));
    targetIntact();
    // And the same for an unprivileged lab user.
    const r = await tryLockAs(VICTIM, path.join(planted, 'x.lock'), 'private');
    expect(r).toMatchObject({ ok: false, name: 'UnsafePathError' });
    targetIntact();
  });

  it('a symlink, a hard link or a FIFO at the lock file in its own folder: refused, nothing written', async () => {
    const own = path.join(sticky, 'own');
    mkdirSync(own, { mode: 0o700 });
    symlinkSync(target, path.join(own, 'sym.lock'));
    linkSync(target, path.join(own, 'hard.lock'));
    await execa('mkfifo', [path.join(own, 'fifo.lock')]);
    for (const [name, why] of [
      ['sym.lock', /it is a symlink/],
      ['hard.lock', /2 hard links/],
      ['fifo.lock', /not a regular file/],
    ] as const) {
      const err = await acquireLock(path.join(own, name), 'lab x').catch((e: unknown) => e);
      expect(err, name).toBeInstanceOf(UnsafePathError);
      expect((err as Error).message, name).toMatch(why);
      targetIntact();
      expect(await readHolder(path.join(own, name)), name).toBeUndefined();
    }
  });

  it('the host-wide lock: a symlink, a hard link, a FIFO or a folder planted at its name are refused; the target keeps its mode and content', async () => {
    const file = path.join(sticky, 'lab-host-networks.lock');
    expect((await as(ATTACKER, ['ln', '-s', target, file])).exitCode).toBe(0);
    const sym = await acquireLock(file, 'networks', { shared: true }).catch((e: unknown) => e);
    expect(sym).toBeInstanceOf(UnsafePathError);
    expect((sym as Error).message).toMatch(/symlink/);
    expect((await tryLockAs(VICTIM, file, 'shared')).name).toBe('UnsafePathError');
    targetIntact();
    await execa('rm', ['-f', file]);
    linkSync(target, file);
    expect(await acquireLock(file, 'networks', { shared: true }).catch((e: unknown) => e)).toBeInstanceOf(
      UnsafePathError,
    );
    targetIntact();
    await execa('rm', ['-f', file]);
    expect((await as(ATTACKER, ['mkfifo', file])).exitCode).toBe(0);
    expect(await acquireLock(file, 'networks', { shared: true }).catch((e: unknown) => e)).toBeInstanceOf(
      UnsafePathError,
    );
    await execa('rm', ['-f', file]);
    const dir = path.join(sticky, 'planted');
    expect((await as(ATTACKER, ['mkdir', '-m', '0777', dir])).exitCode).toBe(0);
    const inDir = await acquireLock(path.join(dir, 'host.lock'), 'networks', { shared: true }).catch(
      (e: unknown) => e,
    );
    expect(inDir).toBeInstanceOf(UnsafePathError);
    expect((inDir as Error).message).toMatch(/writable by every user|owned by uid 4242/);
  });

  it("another user's own file at the host-wide lock's name is locked read-only: never written, never chmod-ed", async () => {
    const file = path.join(sticky, 'lab-host-networks.lock');
    expect((await as(ATTACKER, ['sh', '-c', `umask 022; printf mine > ${file}`])).exitCode).toBe(0);
    const before = statSync(file);
    const lock = await acquireLock(file, 'networks', { shared: true });
    await lock.release();
    const after = statSync(file);
    expect(readFileSync(file, 'utf8')).toBe('mine');
    expect([after.mode, after.uid, after.mtimeMs]).toEqual([before.mode, before.uid, before.mtimeMs]);
  });

  it('the host-wide lock is shared by root and an unprivileged user: each waits for the other; its record names the command, not its arguments', async () => {
    const file = path.join(sticky, 'lab-host-networks.lock');
    const lock = await acquireLock(file, 'networks', { shared: true });
    expect(statSync(file).mode & 0o777).toBe(0o644);
    expect(await tryLockAs(VICTIM, file, 'shared')).toMatchObject({ ok: false, name: 'LockedError' });
    await lock.release();
    expect(await tryLockAs(VICTIM, file, 'shared')).toEqual({ ok: true });
    // Held by the unprivileged user: root is refused at once.
    const byVictim = as(VICTIM, [process.execPath, '--import', 'tsx', holderScript, file, 'shared', 'hold']);
    try {
      await said(byVictim, 'held');
      const err = await acquireLock(file, 'networks', { shared: true }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LockedError);
      // It could not write its record in root's file: the message says no more than that.
      expect((err as LockedError).message).toMatch(/^networks is locked by another lab process/);
    } finally {
      byVictim.kill('SIGKILL');
      await byVictim;
    }
    // Held by root, the file's maker: the record, readable by all, names the command and
    // its first argument only (here the file; `shared hold` after it are left out).
    const byRoot = execa(process.execPath, ['--import', 'tsx', holderScript, file, 'shared', 'hold'], {
      reject: false,
    });
    try {
      await said(byRoot, 'held');
      const r = await tryLockAs(VICTIM, file, 'shared');
      expect(r).toMatchObject({ ok: false, name: 'LockedError' });
      expect(r.message).toContain(`(root@${os.hostname()}: lab ${file}, since `);
      expect(readFileSync(file, 'utf8')).not.toMatch(/shared|hold/);
    } finally {
      byRoot.kill('SIGKILL');
      await byRoot;
    }
  });

  it('an unprivileged user with no private runtime folder keeps its locks in its own state folder', async () => {
    const script = `import { lockDir } from './lab/store/lock.ts'; process.stdout.write(lockDir());`;
    const r = await as(VICTIM, [process.execPath, '--import', 'tsx', '--input-type=module', '-e', script], {
      env: { XDG_RUNTIME_DIR: sticky, LAB_STATE_DIR: '/var/tmp/nobody-state' },
    });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(String(r.stdout)).toBe('/var/tmp/nobody-state/.locks');
  });
});

describe('unsafeFolder', () => {
  const dir = (uid: number, mode: number) => ({ uid, mode, isDirectory: () => true });
  it('takes root or this user as owner, sticky folders writable by all, and nothing else', () => {
    expect(unsafeFolder('/run', dir(0, 0o755), 1000)).toBeUndefined();
    expect(unsafeFolder('/run/lock', dir(0, 0o1777), 1000)).toBeUndefined();
    expect(unsafeFolder('/home/me', dir(1000, 0o700), 1000)).toBeUndefined();
    expect(unsafeFolder('/tmp/x', dir(1001, 0o700), 1000)).toMatch(/owned by uid 1001/);
    expect(unsafeFolder('/srv/x', dir(0, 0o777), 1000)).toMatch(/writable by every user/);
    expect(unsafeFolder('/srv/x', dir(0, 0o775), 1000)).toMatch(/writable by its group/);
    expect(unsafeFolder('/srv/f', { uid: 0, mode: 0o644, isDirectory: () => false }, 1000)).toMatch(
      /not a folder/,
    );
  });
});
