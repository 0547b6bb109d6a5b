import { LabError } from '../errors.js';
import { abortError, formatSeconds, realClock, type Clock } from './clock.js';

/** A wait that ran out of time; `describe` says what was awaited. */
export class DeadlineError extends LabError {
  constructor(
    readonly what: string,
    readonly elapsedMs: number,
    readonly attempts: number,
  ) {
    super(`${what}: not ready after ${formatSeconds(elapsedMs)} (${attempts} attempts)`);
  }
}

export interface PollOptions {
  /** Time budget from the call, in ms. One last attempt runs at the deadline. */
  deadlineMs: number;
  initialMs: number;
  factor: number;
  maxMs: number;
  signal?: AbortSignal;
  /** What is awaited, for the DeadlineError: `node1 services`. */
  describe: string;
  /**
   * Spread of each sleep around the backoff, as a fraction (default 0.2: ±10 %), so that
   * nodes booted together do not poll in step. The backoff itself grows without it.
   */
  jitter?: number;
  clock?: Clock;
}

/** What an attempt may know: its number (1-based) and the time left before the deadline. */
export interface PollAttempt {
  attempt: number;
  remainingMs: number;
}

/**
 * Calls `fn` until it returns something other than `undefined`, sleeping with exponential
 * backoff and jitter between attempts (the clock's `random` draws it; a clock without one,
 * as in tests, sleeps the plain backoff). An error thrown by `fn` ends the wait at once; a
 * retryable failure is `undefined`. Past the deadline it throws DeadlineError.
 */
export async function pollUntil<T>(
  fn: (attempt: PollAttempt) => Promise<T | undefined>,
  options: PollOptions,
): Promise<T> {
  const clock = options.clock ?? realClock;
  const started = clock.now();
  const deadline = started + options.deadlineMs;
  const jitter = Math.min(Math.max(options.jitter ?? 0.2, 0), 1);
  const random = clock.random ? () => clock.random!() : () => 0.5;
  let delayMs = options.initialMs;
  for (let attempt = 1; ; attempt++) {
    if (options.signal?.aborted) throw abortError(options.signal);
    const value = await untilAborted(
      fn({ attempt, remainingMs: Math.max(0, deadline - clock.now()) }),
      options.signal,
    );
    if (value !== undefined) return value;
    const now = clock.now();
    if (now >= deadline) throw new DeadlineError(options.describe, now - started, attempt);
    const spread = delayMs * (1 + jitter * (random() - 0.5));
    await clock.sleep(Math.min(spread, deadline - now), options.signal);
    delayMs = Math.min(delayMs * options.factor, options.maxMs);
  }
}

/**
 * `p`, or the abort as soon as `signal` aborts: an attempt is a read (a probe, a connect
 * that closes itself on abort), so a Ctrl-C need not wait for its timeout.
 */
function untilAborted<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
