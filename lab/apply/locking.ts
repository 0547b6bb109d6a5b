import { failpoint } from '../runtime/failpoint.js';
import { acquireLock, lockFileFor } from '../store/lock.js';

/**
 * Runs a mutating command (up, down, reset) under the lab's lock. Read-only commands
 * (status, ssh, plan) never take it, so they never wait for a long `up`.
 */
export async function withLabLock<T>(
  lab: string,
  opts: { timeoutMs: number; signal?: AbortSignal },
  fn: () => Promise<T>,
): Promise<T> {
  const lock = await acquireLock(lockFileFor(lab), `lab ${lab}`, opts);
  try {
    failpoint('after-lock');
    return await fn();
  } finally {
    await lock.release();
  }
}

/** `--lock-timeout`: `0` (fail at once, the default), `30s`, `10m`, `1h`, or plain seconds. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's']!;
  return Math.round(n * unit);
}
