import { writeFileSync } from 'node:fs';
import { access } from 'node:fs/promises';
import path from 'node:path';
import { pollUntil } from './poll.js';

/**
 * Test-only failpoints. `LAB_FAILPOINT=after-define:node2` makes the process kill itself
 * with SIGKILL when it reaches `failpoint('after-define', 'node2')`: no handler, no
 * cleanup, no flush, exactly what a power cut or `kill -9` does. Several may be given,
 * comma-separated; `after-define` alone matches every node. Unset (the normal case) they
 * do nothing but one environment lookup.
 *
 * The names, in the order `lab up` reaches them: after-lock, mid-download, after-overlay,
 * after-seed, after-define, after-start, mid-state-write, leave-after-member:NODE and
 * leave-after-undefine:NODE (a node the Labfile dropped); then those of `lab checkpoint
 * save` (checkpoint-after-suspend, -after-snapshot:NODE, -before-record) and `restore`
 * (restore-after-revert:NODE, restore-after-resume).
 */
export const FAILPOINTS = [
  'after-lock',
  'mid-download',
  'after-overlay',
  'after-seed',
  'after-define',
  'after-start',
  'mid-state-write',
  // a node the Labfile no longer names: out of etcd, its domain gone, its files not yet
  'leave-after-member',
  'leave-after-undefine',
  // lab checkpoint save / restore
  'checkpoint-after-suspend',
  'checkpoint-after-snapshot',
  'checkpoint-before-record',
  'restore-after-revert',
  'restore-after-resume',
] as const;
export type Failpoint = (typeof FAILPOINTS)[number];

/** Does the failpoint spec (the value of LAB_FAILPOINT) select this point? Pure. */
export function failpointSelected(spec: string | undefined, name: Failpoint, node?: string): boolean {
  if (!spec) return false;
  return spec.split(',').some((entry) => {
    const [point, target] = entry.trim().split(':');
    return point === name && (target === undefined || target === '' || target === node);
  });
}

export function failpoint(name: Failpoint, node?: string): void {
  if (!failpointSelected(process.env.LAB_FAILPOINT, name, node)) return;
  process.stderr.write(`failpoint ${name}${node ? `:${node}` : ''}: SIGKILL\n`);
  process.kill(process.pid, 'SIGKILL');
}

/** Test-only pause points, where a test lines several lab processes up. */
export const PAUSEPOINTS = ['before-network'] as const;
export type Pausepoint = (typeof PAUSEPOINTS)[number];

/**
 * `LAB_PAUSE=before-network LAB_PAUSE_DIR=DIR`: on reaching that point, lab makes the file
 * `DIR/before-network.<pid>` and waits until `DIR/go` exists. A test starts two `lab up`s,
 * waits for both files, then makes `go`: both leave the point together (the race the
 * host-wide network lock is for). Unset (the normal case) it does nothing but one lookup.
 */
export async function pausepoint(name: Pausepoint, signal?: AbortSignal): Promise<void> {
  const dir = process.env.LAB_PAUSE_DIR;
  if (process.env.LAB_PAUSE !== name || !dir) return;
  writeFileSync(path.join(dir, `${name}.${process.pid}`), '');
  process.stderr.write(`pausepoint ${name}: waiting for ${path.join(dir, 'go')}\n`);
  await pollUntil(async () => ((await exists(path.join(dir, 'go'))) ? true : undefined), {
    deadlineMs: 10 * 60_000,
    initialMs: 10,
    factor: 1.5,
    maxMs: 100,
    describe: `pausepoint ${name}`,
    ...(signal ? { signal } : {}),
  });
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}
