import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CommandError, killChildren, observeCommands, run, spawnProgram } from '../../../lab/runtime/exec.js';

describe('killChildren (the second Ctrl-C)', () => {
  it('ends every program lab is running, at once, and forgets those that ended', async () => {
    const t0 = performance.now();
    const running = [run('sleep', ['30']), run('sleep', ['31'])].map((p) => p.catch((e: unknown) => e));
    await new Promise((r) => setTimeout(r, 100));
    const pids = (await run('pgrep', ['-P', String(process.pid), '-x', 'sleep'], { okExitCodes: [1] })).stdout
      .split('\n')
      .filter(Boolean);
    expect(pids).toHaveLength(2);
    expect(killChildren()).toBe(2);
    const ended = await Promise.all(running);
    for (const e of ended) expect(e).toBeInstanceOf(CommandError);
    expect(performance.now() - t0).toBeLessThan(5000);
    for (const pid of pids) expect(existsSync(`/proc/${pid}`)).toBe(false);
    // A finished program is no longer counted.
    await run('true', []);
    expect(killChildren()).toBe(0);
  });
});

describe('spawnProgram (streams, lock holders, the agent)', () => {
  it('runs an argv with LC_ALL=C, and --debug observers see it end with its exit code', async () => {
    const seen: { argv: string[]; exitCode: number; detached?: boolean }[] = [];
    const stop = observeCommands((argv, r) =>
      seen.push({ argv, exitCode: r.exitCode, detached: r.detached }),
    );
    try {
      const child = spawnProgram('sh', ['-c', 'printf %s "$LC_ALL"; exit 3', 'sh'], { stdout: 'pipe' });
      const r = await child;
      expect(r.exitCode).toBe(3);
      expect(String(r.stdout)).toBe('C');
      await new Promise((resolve) => setImmediate(resolve));
      expect(seen).toContainEqual({
        argv: ['sh', '-c', 'printf %s "$LC_ALL"; exit 3', 'sh'],
        exitCode: 3,
        detached: undefined,
      });
    } finally {
      stop();
    }
  });

  it('counts a tracked program among those a second Ctrl-C ends, and an untracked one not', async () => {
    const tracked = spawnProgram('sleep', ['30']);
    const untracked = spawnProgram('sleep', ['31'], { track: false });
    await new Promise((r) => setTimeout(r, 100));
    expect(killChildren()).toBe(1);
    expect((await tracked).signal).toBe('SIGKILL');
    untracked.kill('SIGKILL');
    await untracked;
  });

  it('a detached program is said at its start (exit code -1), and outlives nothing it was not asked to', async () => {
    const seen: { argv: string[]; detached?: boolean }[] = [];
    const stop = observeCommands((argv, r) => seen.push({ argv, detached: r.detached }));
    try {
      const child = spawnProgram('sleep', ['0.1'], {
        detached: true,
        stdin: 'ignore',
        stdout: 'ignore',
        stderr: 'ignore',
        track: false,
      });
      expect(seen).toEqual([{ argv: ['sleep', '0.1'], detached: true }]);
      expect(killChildren()).toBe(0);
      expect((await child).exitCode).toBe(0);
    } finally {
      stop();
    }
  });
});
