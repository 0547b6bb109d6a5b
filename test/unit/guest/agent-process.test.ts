import { existsSync } from 'node:fs';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { hasEnded, procState } from '../../../lab/guest/agent.js';

describe('procState', () => {
  it('reads the state after the command name, whatever that name holds', () => {
    expect(procState('42 (node) S 1 42 42 0 -1')).toBe('S');
    expect(procState('42 (a b) Z 1 42 42 0 -1')).toBe('Z');
    expect(procState('42 (x) R) (y) Z 1 0')).toBe('Z');
    expect(procState('garbage')).toBeUndefined();
  });
});

describe('hasEnded', () => {
  it('is false for a live process and true for one that is gone', () => {
    expect(hasEnded(process.pid)).toBe(false);
    expect(hasEnded(2 ** 22 + 1)).toBe(true);
  });

  it('is true for a zombie that nobody has reaped yet, though /proc still lists it', async () => {
    // sh starts a child that ends at once, then becomes `sleep`, which never reaps it.
    const parent = execa('sh', ['-c', 'sleep 0 & echo $!; exec sleep 5'], { reject: false });
    let out = '';
    parent.stdout.on('data', (b: Buffer) => (out += String(b)));
    while (!/\n/.test(out)) await new Promise((r) => setTimeout(r, 10));
    const zombie = Number(out.trim());
    try {
      for (let i = 0; i < 200 && !hasEnded(zombie); i++) await new Promise((r) => setTimeout(r, 10));
      expect(existsSync(`/proc/${zombie}`)).toBe(true);
      expect(hasEnded(zombie)).toBe(true);
    } finally {
      parent.kill('SIGKILL');
      await parent;
    }
  });
});
