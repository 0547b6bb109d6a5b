/**
 * The guard of a checkpoint save: while `lab checkpoint save` holds every node paused, a
 * detached `lab __pause-guard` process waits for it. When the save ends normally it
 * stops the guard once the nodes run again; when the save is killed (SIGKILL, a crash,
 * the OOM killer), no handler of its own runs, but the guard sees it gone and resumes
 * the nodes and sets their clocks: a save cut short at any moment leaves the lab running.
 */
import { hasEnded } from '../guest/agent.js';
import { resume, setGuestTime } from '../providers/snapshots.js';
import { DEFAULT_VIRSH_RETRY, Virsh } from '../providers/virsh.js';
import { sleep } from '../runtime/clock.js';
import { spawnProgram } from '../runtime/exec.js';
import { cliPath } from '../runtime/package-root.js';

/** A running guard: `stop()` once the nodes run again. */
export interface PauseGuard {
  stop(): void;
}

/** Starts the guard of `saver` (this process) for `domains`, before they are paused. */
export function startPauseGuard(uri: string, domains: string[]): PauseGuard {
  const cli = cliPath();
  const child = spawnProgram(
    process.execPath,
    [...process.execArgv, cli, '__pause-guard', String(process.pid), uri, ...domains],
    { detached: true, stdin: 'ignore', stdout: 'ignore', stderr: 'ignore', track: false },
  );
  return {
    stop() {
      if (child.pid !== undefined && !hasEnded(child.pid)) process.kill(child.pid, 'SIGTERM');
    },
  };
}

/** `lab __pause-guard PID URI DOMAIN...`: waits for PID to end, then resumes the domains still paused. */
export async function runPauseGuard(saver: number, uri: string, domains: string[]): Promise<void> {
  // Stopped by the saver (SIGTERM) once the nodes run: then there is nothing to do.
  while (!hasEnded(saver)) await sleep(100);
  const virsh = new Virsh(uri, undefined, DEFAULT_VIRSH_RETRY);
  await Promise.allSettled(
    domains.map(async (d) => {
      if ((await virsh.domState(d)) !== 'paused') return;
      await resume(virsh, d);
      // Paused for as long as the save ran before it was killed: the clock is behind.
      await setGuestTime(virsh, d).catch(() => undefined);
    }),
  );
}
