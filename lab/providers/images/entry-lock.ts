import { HostError } from '../../errors.js';
import type { EventSink } from '../../events.js';
import { acquireLock, describeHolder, LockedError, type Lock } from '../../store/lock.js';

/**
 * The lock of one piece of work on the image cache (a download of an entry, a build): at
 * once when free; else said (who holds it, `doing`) and waited for, up to `timeoutMs`.
 * `waited` tells the caller to look again: the other process may have done the work.
 * The cache's folders stay 0755: QEMU (another user) reads the base images in them.
 */
export async function lockCacheWork(
  file: string,
  what: string,
  doing: string,
  opts: { onEvent: EventSink; signal?: AbortSignal; timeoutMs: number },
): Promise<{ lock: Lock; waited: boolean }> {
  const lockOpts = { dirMode: 0o755, ...(opts.signal ? { signal: opts.signal } : {}) };
  try {
    return { lock: await acquireLock(file, what, lockOpts), waited: false };
  } catch (err) {
    if (!(err instanceof LockedError)) throw err;
    opts.onEvent({
      kind: 'log',
      level: 'info',
      message: `waiting for ${err.holder ? describeHolder(err.holder) : 'another lab process'}, which is ${doing}`,
    });
  }
  try {
    return { lock: await acquireLock(file, what, { timeoutMs: opts.timeoutMs, ...lockOpts }), waited: true };
  } catch (err) {
    if (!(err instanceof LockedError)) throw err;
    throw new HostError(
      `${err.holder ? describeHolder(err.holder) : 'another lab process'} is still ${doing} after ${Math.round(opts.timeoutMs / 60_000)} min`,
      { cause: err, hint: 'wait for it to finish, then run again' },
    );
  }
}
