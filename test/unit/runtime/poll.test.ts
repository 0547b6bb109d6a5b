import { describe, expect, it } from 'vitest';
import { InterruptedError, LabError } from '../../../lab/errors.js';
import { realClock, sleep, type Clock } from '../../../lab/runtime/clock.js';
import { DeadlineError, pollUntil } from '../../../lab/runtime/poll.js';
import { fakeClock } from '../../support/clock.js';

const backoff = { initialMs: 250, factor: 1.5, maxMs: 3000, describe: 'thing' };

describe('pollUntil', () => {
  it('backs off 250 ms x 1.5 up to 3 s until fn answers (a clock without random: no jitter)', async () => {
    const clock = fakeClock();
    const value = await pollUntil(({ attempt }) => Promise.resolve(attempt === 9 ? 'up' : undefined), {
      ...backoff,
      deadlineMs: 60_000,
      clock,
    });
    expect(value).toBe('up');
    expect(clock.sleeps).toEqual([250, 375, 562.5, 843.75, 1265.625, 1898.4375, 2847.65625, 3000]);
  });

  it("spreads each sleep ±10 % around the backoff with the clock's random; the backoff grows without it", async () => {
    for (const [r, scale] of [
      [0, 0.9],
      [0.75, 1.05],
    ] as const) {
      const fake = fakeClock();
      const clock: Clock = { now: () => fake.t, sleep: (ms) => fake.sleep(ms), random: () => r };
      await pollUntil(({ attempt }) => Promise.resolve(attempt === 6 ? 'up' : undefined), {
        ...backoff,
        deadlineMs: 60_000,
        clock,
      });
      const plain = [250, 375, 562.5, 843.75, 1265.625];
      expect(fake.sleeps).toHaveLength(plain.length);
      plain.forEach((ms, i) => expect(fake.sleeps[i]).toBeCloseTo(ms * scale, 6));
    }
    // The real clock draws from Math.random: the sleeps of two waits differ.
    const draws = new Set<number>();
    for (let i = 0; i < 5; i++) {
      const fake = fakeClock();
      await pollUntil(({ attempt }) => Promise.resolve(attempt === 2 ? 'up' : undefined), {
        ...backoff,
        deadlineMs: 60_000,
        clock: { now: () => fake.t, sleep: (ms) => fake.sleep(ms), random: () => realClock.random!() },
      });
      expect(fake.sleeps[0]).toBeGreaterThanOrEqual(225);
      expect(fake.sleeps[0]).toBeLessThanOrEqual(275);
      draws.add(fake.sleeps[0]!);
    }
    expect(draws.size).toBeGreaterThan(1);
  });

  it('makes a last attempt at the deadline, then throws DeadlineError', async () => {
    const clock = fakeClock();
    const seen: { attempt: number; remainingMs: number }[] = [];
    const err = await pollUntil(
      (a) => {
        seen.push(a);
        return Promise.resolve(undefined);
      },
      { ...backoff, deadlineMs: 1000, clock },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeadlineError);
    expect((err as Error).message).toBe('thing: not ready after 1 s (4 attempts)');
    expect(clock.sleeps).toEqual([250, 375, 375]);
    expect(seen.map((s) => s.remainingMs)).toEqual([1000, 750, 375, 0]);
  });

  it('stops at once when fn throws', async () => {
    const clock = fakeClock();
    let calls = 0;
    const err = await pollUntil(
      () => {
        calls++;
        throw new LabError('fatal');
      },
      { ...backoff, deadlineMs: 10_000, clock },
    ).catch((e: unknown) => e);
    expect((err as Error).message).toBe('fatal');
    expect(calls).toBe(1);
  });

  it('stops when the signal aborts during a real sleep', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 30);
    const started = performance.now();
    const err = await pollUntil(() => Promise.resolve(undefined), {
      ...backoff,
      initialMs: 10_000,
      deadlineMs: 60_000,
      signal: ac.signal,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InterruptedError);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('stops when the signal aborts during an attempt, without waiting for it (a probe that hangs)', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 30);
    const started = performance.now();
    const err = await pollUntil(() => new Promise<undefined>((r) => setTimeout(() => r(undefined), 10_000)), {
      ...backoff,
      deadlineMs: 60_000,
      signal: ac.signal,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InterruptedError);
    expect(performance.now() - started).toBeLessThan(1000);
  });
});

describe('sleep', () => {
  it('resolves after the time', async () => {
    const started = performance.now();
    await sleep(20);
    expect(performance.now() - started).toBeGreaterThanOrEqual(15);
  });

  it('rejects at once when already aborted, and keeps a LabError reason as it is', async () => {
    await expect(sleep(10_000, AbortSignal.abort())).rejects.toBeInstanceOf(InterruptedError);
    const reason = new LabError('node2 failed');
    await expect(sleep(10_000, AbortSignal.abort(reason))).rejects.toBe(reason);
  });
});
