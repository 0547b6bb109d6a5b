// The guard of a checkpoint save, against a fake virsh: while the saver lives it does
// nothing; once the saver is gone it resumes the domains still paused (and sets their
// clocks), and leaves a running one alone.
import { execa } from 'execa';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPauseGuard } from '../../../lab/apply/pause-guard.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'lab-guard-'));
const log = path.join(dir, 'calls.log');
let savedPath: string | undefined;
beforeAll(() => {
  // domstate: a-paused is paused, b-running runs; every call is logged.
  writeFileSync(
    path.join(dir, 'virsh'),
    `#!/bin/sh\nprintf '%s\\n' "$*" >> ${log}\ncase "$*" in\n  *domstate*a-paused*) echo paused ;;\n  *domstate*) echo running ;;\nesac\nexit 0\n`,
  );
  chmodSync(path.join(dir, 'virsh'), 0o755);
  savedPath = process.env.PATH;
  process.env.PATH = `${dir}:${savedPath ?? ''}`;
});
afterAll(() => {
  process.env.PATH = savedPath;
});

describe('the pause guard of a checkpoint save', () => {
  it('waits while the saver lives, then resumes what is still paused and sets its clock', async () => {
    writeFileSync(log, '');
    const saver = execa('sleep', ['1']);
    const t0 = performance.now();
    await runPauseGuard(saver.pid!, 'qemu:///system', ['a-paused', 'b-running']);
    // It waited for the saver (1 s), not less.
    expect(performance.now() - t0).toBeGreaterThan(900);
    await saver;
    const calls = readFileSync(log, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((c) => c.replace(/^-q -c \S+ /, ''));
    expect(calls.filter((c) => !c.startsWith('domstate')).sort()).toEqual([
      'domtime --domain a-paused --now',
      'resume --domain a-paused',
    ]);
  });
});
