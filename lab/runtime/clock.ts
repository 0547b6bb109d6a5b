import { InterruptedError, LabError } from '../errors.js';

/** Time as waits see it; tests pass a fake that advances on `sleep` and never really waits. */
export interface Clock {
  /** Monotonic milliseconds. */
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** A number in [0, 1) for the backoff's jitter; without it, every sleep is the plain backoff. */
  random?(): number;
}

export const realClock: Clock = { now: () => performance.now(), sleep, random: Math.random };

/** The error to throw when `signal` is aborted: its reason if that is a LabError, else "interrupted". */
export function abortError(signal: AbortSignal): LabError {
  const reason: unknown = signal.reason;
  if (reason instanceof LabError) return reason;
  return new InterruptedError('interrupted', { cause: reason });
}

/** Resolves after `ms`, or rejects (see `abortError`) as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError(signal));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal!));
    };
    const timer = setTimeout(
      () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      },
      Math.max(0, ms),
    );
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** `42 s`, `1.5 s`: for messages. */
export function formatSeconds(ms: number): string {
  const s = ms / 1000;
  return `${s >= 10 ? Math.round(s) : Math.round(s * 10) / 10} s`;
}
