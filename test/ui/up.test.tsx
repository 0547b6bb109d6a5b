import { EventEmitter } from 'node:events';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';

// chalk (under ink) decides at import whether to color; force it, as in status.test.tsx.
// ink decides at import whether it runs under CI (then it draws only the last frame, on
// unmount): mountUpView is tested as a person's terminal sees it, so CI=false here, as
// cmd/commands/up.ts only mounts it outside CI.
const previous = vi.hoisted(() => {
  const saved = { FORCE_COLOR: process.env.FORCE_COLOR, CI: process.env.CI };
  process.env.FORCE_COLOR = '1';
  process.env.CI = 'false';
  return saved;
});

import { cleanup, render } from 'ink-testing-library';
import type { LabEvent } from '../../lab/events.js';
import {
  LOG_LINES,
  formatDuration,
  formatTransfer,
  initialUpState,
  reduceUp,
  type UpViewState,
} from '../../lab/ui/up/progress.js';
import { UpView, mountUpView } from '../../lab/ui/up/UpView.js';
import { ANSI, lines, plain, renderAt } from './fixtures/ink.js';
import { NODES, SSH_TIMEOUT, T0, upEvents } from './fixtures/up-events.js';

afterAll(() => {
  for (const [key, value] of Object.entries(previous)) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
});
afterEach(() => cleanup());

const MiB = 1024 ** 2;

/** The view's state after the recorded events up to `ms` after the start. */
function stateAt(ms: number): UpViewState {
  return upEvents
    .filter(([at]) => at <= ms)
    .reduce((s, [at, e]) => reduceUp(s, e, T0 + at), initialUpState(NODES, T0));
}

const node = (s: UpViewState, name: string) => s.nodes.find((n) => n.node === name)!;

describe('reduceUp', () => {
  it('keeps the initial order, and adds unknown nodes in the order first seen', () => {
    let s = initialUpState(['b', 'a'], T0);
    s = reduceUp(s, { kind: 'node', node: 'z', step: 'image', status: 'start' }, T0 + 1);
    s = reduceUp(s, { kind: 'node', node: 'a', step: 'image', status: 'start' }, T0 + 2);
    s = reduceUp(s, { kind: 'node', node: 'c', step: 'disk', status: 'start' }, T0 + 3);
    expect(s.nodes.map((n) => n.node)).toEqual(['b', 'a', 'z', 'c']);
    expect(node(s, 'b')).toMatchObject({ step: 'pending', status: 'start' });
    expect(node(s, 'c')).toMatchObject({ step: 'disk', since: T0 + 3, startedAt: T0 + 3 });
  });

  it('follows a step from start to done, its time stopping at done', () => {
    const during = node(stateAt(21_600), 'coreos1');
    expect(during).toMatchObject({ step: 'seed', status: 'start', since: T0 + 21_510 });
    expect(during.until).toBeUndefined();
    const after = node(stateAt(21_500), 'coreos1');
    expect(after).toMatchObject({
      step: 'disk',
      status: 'done',
      since: T0 + 21_010,
      until: T0 + 21_500,
      detail: 'overlay',
    });
  });

  it('a done without a start (the image a first node fetched) is a step of no time', () => {
    const n = node(stateAt(21_001), 'coreos2');
    expect(n).toMatchObject({ step: 'image', status: 'done', since: T0 + 21_001, until: T0 + 21_001 });
  });

  it('healthy finishes a node: its total time stops', () => {
    const n = node(stateAt(400_000), 'coreos1');
    expect(n).toMatchObject({ step: 'healthy', status: 'done', finishedAt: T0 + 75_000 });
    expect(node(stateAt(70_000), 'coreos1').finishedAt).toBeUndefined();
  });

  it('a failure keeps its detail, whatever comes after', () => {
    let s = stateAt(400_000);
    expect(node(s, 'coreos2')).toMatchObject({
      step: 'ssh',
      status: 'fail',
      detail: SSH_TIMEOUT,
      since: T0 + 22_311,
      finishedAt: T0 + 322_310,
    });
    s = reduceUp(
      s,
      { kind: 'log', level: 'info', message: 'lab coreos3: 2 of 3 nodes healthy' },
      T0 + 400_001,
    );
    s = reduceUp(s, { kind: 'progress', step: 'download x', done: 1, unit: 'bytes' }, T0 + 400_002);
    expect(node(s, 'coreos2').detail).toBe(SSH_TIMEOUT);
  });

  it('a failure that says nothing keeps what its step said before', () => {
    let s = initialUpState(['n'], T0);
    s = reduceUp(
      s,
      { kind: 'node', node: 'n', step: 'disk', status: 'start', detail: 'replacing: template changed' },
      T0 + 1,
    );
    s = reduceUp(s, { kind: 'node', node: 'n', step: 'disk', status: 'fail' }, T0 + 2);
    expect(node(s, 'n')).toMatchObject({
      status: 'fail',
      detail: 'replacing: template changed',
      since: T0 + 1,
    });
  });

  it('lab-wide progress: a rate once samples are 500 ms apart, smoothed, reset when a transfer restarts', () => {
    const t = (ms: number) => stateAt(ms).transfers;
    expect(t(50)).toEqual([]);
    expect(t(100)).toEqual([
      { step: 'download debian-12', done: 0, total: 260 * MiB, sampleAt: T0 + 100, sampleDone: 0 },
    ]);
    expect(t(1100)[0]!.rateBytesPerSec).toBe(12 * MiB);
    // 12 MiB in the next second too; then 236 MiB in 18 s (13.1 MiB/s), averaged with 12.
    expect(t(2100)[0]!.rateBytesPerSec).toBe(12 * MiB);
    expect(t(20_100)[0]!.rateBytesPerSec).toBeCloseTo(((12 + 236 / 18) / 2) * MiB);
    let s = stateAt(1100);
    s = reduceUp(
      s,
      { kind: 'progress', step: 'download debian-12', done: 13 * MiB, unit: 'bytes' },
      T0 + 1200,
    );
    // 100 ms later: too soon to measure, the last rate stays.
    expect(s.transfers[0]).toMatchObject({ done: 13 * MiB, total: 260 * MiB, rateBytesPerSec: 12 * MiB });
    s = reduceUp(s, { kind: 'progress', step: 'download debian-12', done: MiB, unit: 'bytes' }, T0 + 5000);
    expect(s.transfers[0]!.rateBytesPerSec).toBeUndefined();
    expect(s.transfers).toHaveLength(1);
  });

  it("a node's progress belongs to its current step, and goes with it", () => {
    let s = initialUpState(['n'], T0);
    s = reduceUp(s, { kind: 'node', node: 'n', step: 'image', status: 'start' }, T0);
    s = reduceUp(
      s,
      { kind: 'progress', node: 'n', step: 'image', done: 0, total: 10 * MiB, unit: 'bytes' },
      T0,
    );
    s = reduceUp(s, { kind: 'progress', node: 'n', step: 'image', done: 4 * MiB, unit: 'bytes' }, T0 + 1000);
    expect(node(s, 'n').progress).toMatchObject({ done: 4 * MiB, total: 10 * MiB, rateBytesPerSec: 4 * MiB });
    expect(s.transfers).toEqual([]);
    s = reduceUp(s, { kind: 'node', node: 'n', step: 'disk', status: 'start' }, T0 + 2000);
    expect(node(s, 'n').progress).toBeUndefined();
  });

  it('keeps the last info and warning lines, drops debug', () => {
    expect(stateAt(30_000).log).toEqual(['warning: no /dev/kvm: running emulated (TCG), expect slow boots']);
    let s = initialUpState([], T0);
    for (let i = 0; i < 8; i++) s = reduceUp(s, { kind: 'log', level: 'info', message: `line ${i}` }, T0);
    expect(s.log).toHaveLength(LOG_LINES);
    expect(s.log.at(-1)).toBe('line 7');
  });

  it('is pure: the state passed in is not changed', () => {
    const before = stateAt(21_600);
    const copy = structuredClone(before);
    const events: LabEvent[] = [
      { kind: 'node', node: 'coreos1', step: 'seed', status: 'done' },
      { kind: 'progress', step: 'download debian-12', done: 0, unit: 'bytes' },
      { kind: 'progress', node: 'coreos2', step: 'seed', done: 0, unit: 'bytes' },
      { kind: 'log', level: 'warn', message: 'x' },
    ];
    for (const e of events) reduceUp(before, e, T0 + 30_000);
    expect(before).toEqual(copy);
  });
});

describe('formatting', () => {
  it('durations', () => {
    expect([0, 420, 9_949, 12_000, 65_000, 3_725_000, -5].map(formatDuration)).toEqual([
      '0.0s',
      '0.4s',
      '9.9s',
      '12s',
      '1m05s',
      '1h02m',
      '0.0s',
    ]);
  });

  it('download bars', () => {
    expect(formatTransfer({ done: 117 * MiB, total: 260 * MiB, rateBytesPerSec: 12.1 * MiB })).toBe(
      '[####------] 45% 117.0/260.0 MiB 12.1 MiB/s',
    );
    expect(formatTransfer({ done: 260 * MiB, total: 260 * MiB, rateBytesPerSec: MiB })).toBe(
      '[##########] 100% 260.0/260.0 MiB',
    );
    expect(formatTransfer({ done: 5.5 * MiB })).toBe('5.5 MiB');
  });
});

describe('UpView', () => {
  const view = (ms: number, opts: { color?: boolean; columns?: number } = {}) => {
    const columns = opts.columns ?? 100;
    const el = <UpView state={stateAt(ms)} now={T0 + ms} color={opts.color ?? false} columns={columns} />;
    return lines((columns > 100 ? renderAt(el, columns) : render(el)).lastFrame());
  };
  const rowOf = (frame: string[], name: string) =>
    frame.find((l) => plain(l).slice(2).startsWith(name)) ?? '';

  it('during the download: the lab-wide bar above, every node waiting', () => {
    const frame = view(2100, { columns: 80 });
    expect(frame[0]).toBe('download debian-12  [----------] 9% 24.0/260.0 MiB 12.0 MiB/s');
    expect(rowOf(frame, 'coreos1')).toMatch(/^[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] coreos1 +image +2\.1s +2\.1s$/);
    expect(rowOf(frame, 'coreos2')).toMatch(/^· coreos2 +pending$/);
    expect(frame.at(-1)).toBe('0/3 healthy, 2.1s');
  });

  it('midway: a spinner, the step, its time and the total, and the last detail', () => {
    const frame = view(40_000, { columns: 80 });
    expect(rowOf(frame, 'coreos1')).toMatch(/^[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] coreos1 +ssh +17s +40s$/);
    expect(frame).toContain('warning: no /dev/kvm: running emulated (TCG), expect slow boots');
  });

  it('the end: ✓ for healthy nodes with their total, ✗ for the failure, its error in full', () => {
    const frame = view(400_000, { columns: 80 });
    expect(rowOf(frame, 'coreos1')).toMatch(/^✓ coreos1 +healthy +1m15s$/);
    expect(rowOf(frame, 'coreos3')).toMatch(/^✓ coreos3 +healthy +1m18s$/);
    expect(rowOf(frame, 'coreos2')).toMatch(/^✗ coreos2 +ssh +4m59s +5m22s {2}failed \(see below\)$/);
    // The error is wrapped, not cut: all of it is on screen.
    const at = frame.findIndex((l) => l.startsWith('✗ coreos2 ssh: '));
    expect(at).toBeGreaterThan(0);
    const error = frame.slice(at).join(' ').replace(/\s+/g, ' ');
    expect(error).toContain(`✗ coreos2 ssh: ${SSH_TIMEOUT}`.replace(/\s+/g, ' '));
    expect(frame.at(-1)).toBe('2/3 healthy, 1 failed, 6m40s');
  });

  it('the step pipeline on a wide terminal, the current step bracketed', () => {
    const frame = view(40_000, { columns: 140 });
    expect(rowOf(frame, 'coreos1')).toMatch(
      /ssh +17s +40s {2}image › disk › seed › define › boot › \[ssh\] › services › healthy$/,
    );
    const waiting = view(2100, { columns: 140 });
    expect(rowOf(waiting, 'coreos1')).toContain('[image] › disk');
    expect(rowOf(waiting, 'coreos2')).not.toContain('›');
    const done = view(400_000, { columns: 140 });
    expect(rowOf(done, 'coreos1')).toContain(
      'image › disk › seed › define › boot › ssh › services › healthy',
    );
    expect(rowOf(done, 'coreos2')).toContain('boot › [ssh] › services');
  });

  it('no pipeline on a narrower terminal, and no line wider than it', () => {
    for (const columns of [40, 60, 80, 90]) {
      for (const ms of [2100, 40_000, 400_000]) {
        const frame = view(ms, { columns });
        expect(frame.join('\n')).not.toContain('›');
        for (const l of frame) expect(l.length).toBeLessThanOrEqual(columns);
      }
    }
  });

  it('no escape sequences without color; colors with it', () => {
    for (const ms of [2100, 40_000, 400_000]) expect(view(ms, { columns: 140 }).join('\n')).not.toMatch(ANSI);
    const colored = view(400_000, { columns: 140, color: true });
    expect(colored.join('\n')).toMatch(ANSI);
    // The failure is red.
    expect(colored.find((l) => plain(l).startsWith('✗ coreos2 ssh: '))).toContain('\u001b[31m');
  });
});

describe('mountUpView', () => {
  /** A terminal the view writes to. */
  class FakeTerminal extends EventEmitter {
    columns = 100;
    rows = 40;
    isTTY = true;
    written = '';
    write(chunk: string) {
      this.written += chunk;
      return true;
    }
  }

  it('draws events on the stream, and the final state once more on finish', async () => {
    const term = new FakeTerminal();
    let t = T0;
    const handle = mountUpView(NODES, false, { stream: term as unknown as NodeJS.WriteStream, now: () => t });
    expect(plain(term.written)).toContain('· coreos1');
    for (const [at, e] of upEvents) {
      t = T0 + at;
      handle.onEvent(e);
    }
    const beforeFinish = term.written.length;
    await handle.finish();
    const final = plain(term.written.slice(beforeFinish));
    expect(final).toContain('✓ coreos1');
    expect(final).toContain('✗ coreos2 ssh: ssh 10.77.0.12:22 not answering');
    expect(final).toContain('2/3 healthy, 1 failed, 5m22s');
    // Unmounted: later events draw nothing.
    const after = term.written.length;
    handle.onEvent({ kind: 'log', level: 'info', message: 'late' });
    await new Promise((r) => setTimeout(r, 300));
    expect(term.written.length).toBe(after);
  });
});
