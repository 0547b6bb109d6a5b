import type { Clock } from '../../lab/runtime/clock.js';

/** A clock that never really waits: a sleep returns at once, moves time forward and is recorded. */
export interface FakeClock extends Clock {
  /** Every sleep asked for, in ms, in order. */
  sleeps: number[];
  /** The current time in ms (starts at 0). */
  t: number;
}

/** A FakeClock; a sleep whose signal is already aborted rejects, as the real one does. */
export function fakeClock(): FakeClock {
  const clock: FakeClock = {
    t: 0,
    sleeps: [],
    now: () => clock.t,
    sleep: (ms: number, signal?: AbortSignal) => {
      if (signal?.aborted) return Promise.reject(new Error('aborted'));
      clock.sleeps.push(ms);
      clock.t += ms;
      return Promise.resolve();
    },
  };
  return clock;
}
