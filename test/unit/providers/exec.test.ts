import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CommandError, killChildren, run } from '../../../lab/providers/exec.js';

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
