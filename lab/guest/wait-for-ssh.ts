/** Waiting for a booting node's sshd: connection attempts with backoff until a deadline. */
import { NodeError, describeError } from '../errors.js';
import { formatSeconds, type Clock } from '../runtime/clock.js';
import { DeadlineError, pollUntil } from '../runtime/poll.js';
import { HostKeyMismatchError } from './host-key.js';
import { GuestSession } from './session.js';
import type { SshTarget } from './ssh-connect.js';

/** The time budget of waitForSsh, and what it reports on the way. */
export interface WaitForSshOptions {
  /** Time budget from the call, in ms. */
  deadlineMs: number;
  signal?: AbortSignal;
  /** Called after each failed attempt (1-based), for progress output. */
  onAttempt?: (attempt: number, err: unknown) => void;
  clock?: Clock;
  /** Upper bound for one attempt's connect + login, in ms (default 15 s). */
  attemptTimeoutMs?: number;
}

/**
 * Connects to a booting node: retries with backoff (250 ms × 1.5, at most 3 s) until the
 * deadline. A host key mismatch fails at once: it is a security event, not a slow boot.
 */
export async function waitForSsh(target: SshTarget, options: WaitForSshOptions): Promise<GuestSession> {
  const { signal } = options;
  let lastError: unknown;
  try {
    return await pollUntil(
      async ({ attempt, remainingMs }) => {
        try {
          const timeoutMs = Math.max(1000, Math.min(options.attemptTimeoutMs ?? 15_000, remainingMs));
          return await GuestSession.connect(target, { timeoutMs, ...(signal ? { signal } : {}) });
        } catch (err) {
          options.onAttempt?.(attempt, err);
          if (err instanceof HostKeyMismatchError || signal?.aborted) throw err;
          lastError = err;
          return undefined;
        }
      },
      {
        deadlineMs: options.deadlineMs,
        initialMs: 250,
        factor: 1.5,
        maxMs: 3000,
        describe: `SSH on ${target.node}`,
        ...(signal ? { signal } : {}),
        ...(options.clock ? { clock: options.clock } : {}),
      },
    );
  } catch (err) {
    if (!(err instanceof DeadlineError)) throw err;
    throw noAnswerError(target, err, lastError);
  }
}

/** The error for a node that did not answer in time: how long, how often, and the last reason. */
function noAnswerError(target: SshTarget, deadline: DeadlineError, lastError: unknown): NodeError {
  // The inner NodeError repeats "node: ssh:"; its cause is the plain reason.
  const reason =
    lastError instanceof NodeError && lastError.cause instanceof Error
      ? lastError.cause.message
      : describeError(lastError);
  return new NodeError(
    target.node,
    'ssh',
    `no SSH answer after ${formatSeconds(deadline.elapsedMs)}: last error: ${reason} (${target.user}@${target.host}:${target.port ?? 22}, ${deadline.attempts} attempts)`,
    {
      cause: lastError ?? deadline,
      hint: `is the VM running? its serial console log (in the lab folder, console/${target.node}.log) shows what it is doing`,
    },
  );
}
