import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';

// chalk (under ink) decides at import whether to color; a test run has no TTY, so force it:
// otherwise "color=false emits no escapes" would hold for color=true too.
const previousForceColor = vi.hoisted(() => {
  const previous = process.env.FORCE_COLOR;
  process.env.FORCE_COLOR = '1';
  return previous;
});

import { cleanup, render } from 'ink-testing-library';
import type { NodeView } from '../../lab/apply/status-snapshot.js';
import {
  COLUMNS,
  DROP_ORDER,
  cutSegments,
  fitColumns,
  formatAge,
  layoutRow,
  machineIdCell,
  memCell,
  nodeRow,
  truncate,
  type Row,
} from '../../lab/ui/status/columns.js';
import { StatusApp } from '../../lab/ui/status/StatusApp.js';
import { ANSI, ESC, KEYS, delay, lines, plain, renderAt } from './fixtures/ink.js';
import {
  MACHINE_IDS,
  NOW,
  coreos2Details,
  duplicateMachineId,
  healthy,
  leaderLost,
  probing,
  unreachable,
  linkDown,
} from './fixtures/snapshots.js';
import { FakeSource } from './fixtures/source.js';
import type { StatusSnapshot } from '../../lab/apply/status-snapshot.js';

afterAll(() => {
  if (previousForceColor === undefined) delete process.env.FORCE_COLOR;
  else process.env.FORCE_COLOR = previousForceColor;
});
afterEach(() => cleanup());

const clock = () => NOW;

function mount(
  snapshot: StatusSnapshot,
  opts: { color?: boolean; columns?: number; initialSelected?: number; now?: () => number } = {},
) {
  const source = new FakeSource(snapshot);
  const onShell = vi.fn<(node: string, index: number) => void>();
  const columns = opts.columns ?? 100;
  const el = (
    <StatusApp
      source={source}
      color={opts.color ?? false}
      onShell={onShell}
      now={opts.now ?? clock}
      columns={columns}
      {...(opts.initialSelected !== undefined ? { initialSelected: opts.initialSelected } : {})}
    />
  );
  const ink = columns > 100 ? renderAt(el, columns) : render(el);
  const frame = () => ink.lastFrame() ?? '';
  // The row of a node, found by its text (a colored line starts with escapes).
  const row = (node: string) => lines(frame()).find((l) => plain(l).slice(2).startsWith(`${node} `)) ?? '';
  return { source, onShell, ink, frame, row };
}

describe('status screen: what it shows', () => {
  it('a healthy lab: header verdict, one row per node with every column at 140 columns', () => {
    const { frame, row } = mount(healthy, { columns: 140 });
    const [title, verdict] = lines(frame());
    expect(title).toBe('lab coreos3  qemu:///system  KVM');
    expect(verdict).toBe('etcd: quorum yes, 3 members, leader coreos1');
    const header = lines(frame()).find((l) => l.includes('NODE'))!;
    for (const c of COLUMNS) expect(header).toContain(c.header);
    expect(row('coreos1')).toMatch(
      /coreos1 +running +10\.77\.0\.11 +b3a1c6f0e2d9 +leader term 2 +20\.10\.24\+dfsg1 \(1 running\) +absent +0\.08 +409\/1987 MiB +3s$/,
    );
    expect(row('coreos2')).toMatch(
      /coreos2 +running .*follower term 2 +20\.10\.24\+dfsg1 \(0 running\) +absent/,
    );
    expect(row('coreos3')).toContain('follower term 2');
    expect(frame()).not.toContain('duplicate');
  });

  it('the leader lost: coreos1 shut off with dashes, coreos2 leader in term 3', () => {
    const { frame, row } = mount(leaderLost);
    expect(row('coreos1')).toMatch(/coreos1 +shut off +- +- +/);
    expect(row('coreos1')).not.toMatch(/leader|follower|10\.77/);
    expect(row('coreos2')).toMatch(/leader term 3/);
    expect(row('coreos3')).toMatch(/follower term 3/);
    expect(lines(frame())[1]).toBe('etcd: quorum yes, 3 members, leader coreos2');
  });

  it('duplicate machine-ids: a warning naming both nodes, and a `!` on their ids without color', () => {
    const { frame, row } = mount(duplicateMachineId, { columns: 140 });
    const short = MACHINE_IDS.coreos2.slice(0, 12);
    expect(row('coreos2')).toContain(`${short}!`);
    expect(row('coreos3')).toContain(`${short}!`);
    expect(row('coreos1')).not.toContain('!');
    const warning = lines(frame()).find((l) => l.startsWith('duplicate machine-id'));
    expect(warning).toContain('cloned image?');
    expect(warning).toContain('coreos2, coreos3');
  });

  it('duplicate machine-ids in color: the ids are red, no `!`', () => {
    const { row } = mount(duplicateMachineId, { columns: 140, color: true });
    const short = MACHINE_IDS.coreos2.slice(0, 12);
    expect(row('coreos2')).toContain(`\u001b[31m${short}`);
    expect(row('coreos2')).not.toContain(`${short}!`);
  });

  it('an unreachable node: its state says so, and its last error is under the table', () => {
    const { frame, row } = mount(unreachable);
    expect(row('coreos3')).toMatch(/coreos3 +unreachable +10\.77\.0\.13 +- +-/);
    expect(row('coreos3')).toMatch(/12s$/);
    expect(lines(frame())).toContain('coreos3: unreachable: timed out');
  });

  it('a link taken down: the state says link down (not unreachable), and why is under the table', () => {
    const { frame, row } = mount(linkDown);
    expect(row('coreos1')).toMatch(/coreos1 +link down +10\.77\.0\.11 +- +-/);
    expect(lines(frame())).toContain(
      'coreos1: its network link is down (lab link coreos1 up, or lab up, sets it up)',
    );
  });

  it('probes in flight: a spinner by the age (probing… before the first), in a column of fixed width', async () => {
    const { row, frame, source } = mount(probing, { columns: 100 });
    expect(row('coreos1')).toMatch(/ [⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] 3s$/);
    expect(row('coreos3')).toMatch(/coreos3 +running .* [⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] probing…$/);
    const header = () => lines(frame()).find((l) => l.includes('NODE'));
    const before = header();
    source.push(healthy);
    await delay();
    expect(row('coreos1')).toMatch(/ 3s$/);
    // The probe's end changes no column: the table does not jump.
    expect(header()).toBe(before);
    expect(lines(frame())[0]).toBe('lab coreos3  qemu:///system  KVM');
  });

  it('probes in flight without room for AGE: the title says so', () => {
    const { frame } = mount(probing, { columns: 60 });
    expect(lines(frame()).find((l) => l.includes('NODE'))).not.toContain('AGE');
    expect(lines(frame())[0]).toMatch(/^lab coreos3 {2}qemu:\/\/\/system {2}KVM {2}[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] probing…$/);
  });

  it('ages follow the clock, not the snapshot', () => {
    let t = NOW;
    const { ink, row } = mount(healthy, { columns: 140, now: () => t });
    expect(row('coreos1')).toMatch(/ 3s$/);
    t = NOW + 62_000;
    ink.rerender(
      <StatusApp
        source={new FakeSource(healthy)}
        color={false}
        onShell={() => {}}
        now={() => t}
        columns={140}
      />,
    );
    expect(row('coreos1')).toMatch(/ 1m$/);
  });

  it('re-renders on every pushed snapshot, and unsubscribes on unmount', async () => {
    const { source, ink, frame } = mount(healthy);
    expect(source.subscribers).toBe(1);
    source.push(leaderLost);
    await delay();
    expect(frame()).toContain('leader coreos2');
    ink.unmount();
    expect(source.unsubscribed).toHaveBeenCalledOnce();
    expect(source.subscribers).toBe(0);
  });
});

describe('status screen: widths and color', () => {
  it.each([40, 80, 140])('at %i columns no line is wider, and NODE, STATE, ETCD stay', (columns) => {
    for (const snap of [healthy, leaderLost, duplicateMachineId, unreachable, probing]) {
      const { frame, ink } = mount(snap, { columns });
      for (const line of lines(frame())) expect(line.length).toBeLessThanOrEqual(columns);
      expect(frame()).toMatch(/NODE +STATE +.*ETCD/);
      ink.unmount();
    }
  });

  it('40 columns: only NODE, STATE, ETCD; the long lines cut with …', () => {
    const { frame, row } = mount(unreachable, { columns: 40 });
    expect(
      lines(frame())
        .find((l) => l.includes('NODE'))!
        .trim(),
    ).toMatch(/^NODE +STATE +ETCD$/);
    expect(row('coreos1')).toMatch(/coreos1 +running +leader term 2$/);
    expect(lines(frame()).find((l) => l.startsWith('coreos3: '))).toMatch(
      /^coreos3: unreachable: timed out$/,
    );
    const footer = lines(frame()).at(-1)!;
    expect(footer.endsWith('…')).toBe(true);
  });

  it('80 columns: IP and DOCKER kept, MEM, LOAD, FLEET, MACHINE-ID and AGE dropped', () => {
    const header = lines(mount(healthy, { columns: 80 }).frame()).find((l) => l.includes('NODE'))!;
    expect(header.trim()).toMatch(/^NODE +STATE +IP +ETCD +DOCKER$/);
  });

  it('100 columns: AGE outlasts MACHINE-ID', () => {
    const header = lines(mount(healthy, { columns: 100 }).frame()).find((l) => l.includes('NODE'))!;
    expect(header.trim()).toMatch(/^NODE +STATE +IP +ETCD +DOCKER +AGE$/);
  });

  it('color=false: not a single escape sequence, the selection is a `>`', () => {
    for (const snap of [healthy, leaderLost, duplicateMachineId, unreachable, probing]) {
      const { frame, ink } = mount(snap, { color: false });
      expect(frame()).not.toMatch(ANSI);
      expect(lines(frame()).filter((l) => l.startsWith('> '))).toHaveLength(1);
      ink.unmount();
    }
  });

  it('color=true: colored, and the selection is inverse, not a `>`', () => {
    const { frame, row } = mount(healthy, { color: true });
    expect(frame()).toMatch(ANSI);
    expect(row('coreos1')).toContain('\u001b[7m');
    expect(lines(frame()).some((l) => l.startsWith('> '))).toBe(false);
  });
});

describe('status screen: keys', () => {
  it('j/k and the arrows move the selection, within the rows', async () => {
    const { ink, row } = mount(healthy);
    expect(row('coreos1').startsWith('> ')).toBe(true);
    ink.stdin.write('j');
    await delay();
    expect(row('coreos2').startsWith('> ')).toBe(true);
    ink.stdin.write(KEYS.down);
    await delay();
    ink.stdin.write(KEYS.down);
    await delay();
    expect(row('coreos3').startsWith('> ')).toBe(true);
    ink.stdin.write(KEYS.up);
    await delay();
    ink.stdin.write('k');
    await delay();
    ink.stdin.write('k');
    await delay();
    expect(row('coreos1').startsWith('> ')).toBe(true);
  });

  it('starts on initialSelected', () => {
    const { row } = mount(healthy, { initialSelected: 2 });
    expect(row('coreos3').startsWith('> ')).toBe(true);
    expect(row('coreos1').startsWith('  ')).toBe(true);
  });

  it('j then enter: details of coreos2, loading… until they arrive', async () => {
    const { ink, source, frame } = mount(healthy);
    ink.stdin.write('j');
    await delay();
    ink.stdin.write(KEYS.enter);
    await delay();
    expect(source.details).toHaveBeenCalledExactlyOnceWith('coreos2');
    expect(frame()).toContain('details of coreos2');
    expect(frame()).toContain('loading…');
    source.resolveDetails(coreos2Details);
    await delay();
    const shown = lines(frame());
    expect(frame()).not.toContain('loading…');
    expect(shown).toContain('failed units: systemd-networkd-wait-online.service');
    expect(shown).toContain('addresses: eth0 10.77.0.12/24');
    expect(shown).toContain('disk: 1.2G of 3.9G (31%)');
    expect(shown).toContain('etcd:');
    expect(shown).toContain('  Oct 09 08:53:12 coreos2 etcd[412]: ready to serve client requests');
    // Journal lines are cut at the width, never wrapped.
    expect(shown.find((l) => l.includes('elected leader'))).toMatch(/…$/);
    for (const l of shown) expect(l.length).toBeLessThanOrEqual(100);
  });

  it('details that fail to load show why', async () => {
    const { ink, source, frame } = mount(healthy);
    ink.stdin.write(KEYS.enter);
    await delay();
    source.rejectDetails(new Error('not connected'));
    await delay();
    expect(frame()).toContain('error: not connected');
  });

  it('q while details are open closes them, not the app; q again exits', async () => {
    const { ink, source, frame, row } = mount(healthy);
    ink.stdin.write(KEYS.enter);
    await delay();
    source.resolveDetails({ ...coreos2Details, node: 'coreos1' });
    await delay();
    expect(frame()).toContain('details of coreos1');
    ink.stdin.write('q');
    await delay();
    expect(frame()).not.toContain('details of');
    expect(source.unsubscribed).not.toHaveBeenCalled();
    // Still alive: keys still move the selection.
    ink.stdin.write('j');
    await delay();
    expect(row('coreos2').startsWith('> ')).toBe(true);
    ink.stdin.write('q');
    await delay();
    expect(source.unsubscribed).toHaveBeenCalledOnce();
  });

  it('esc and enter close the details too; a late answer does not reopen them', async () => {
    const { ink, source, frame } = mount(healthy);
    ink.stdin.write(KEYS.enter);
    await delay();
    ink.stdin.write(ESC);
    await delay();
    expect(frame()).not.toContain('details of');
    source.resolveDetails(coreos2Details);
    await delay();
    expect(frame()).not.toContain('details of');
    ink.stdin.write(KEYS.enter);
    await delay();
    expect(frame()).toContain('details of coreos1');
    ink.stdin.write(KEYS.enter);
    await delay();
    expect(frame()).not.toContain('details of');
  });

  it('s calls onShell with the selected node and its index, then exits', async () => {
    const { ink, source, onShell } = mount(healthy);
    ink.stdin.write('j');
    await delay();
    ink.stdin.write('j');
    await delay();
    ink.stdin.write('s');
    await delay();
    expect(onShell).toHaveBeenCalledExactlyOnceWith('coreos3', 2);
    expect(source.unsubscribed).toHaveBeenCalledOnce();
  });

  it('r asks the source for a refresh and stays', async () => {
    const { ink, source } = mount(healthy);
    ink.stdin.write('r');
    await delay();
    expect(source.refresh).toHaveBeenCalledOnce();
    expect(source.unsubscribed).not.toHaveBeenCalled();
  });

  it('ctrl-c exits', async () => {
    const { ink, source } = mount(healthy);
    ink.stdin.write(KEYS.ctrlC);
    await delay();
    expect(source.unsubscribed).toHaveBeenCalledOnce();
  });
});

describe('columns', () => {
  const ctx = { now: NOW, duplicates: new Set<string>(), color: false, spinner: '⠋' };
  const rows: Row[] = healthy.nodes.map((n) => nodeRow(n, ctx));
  const kept = (width: number) => fitColumns(rows, width, 2).map((c) => c.key);

  it('drops columns in DROP_ORDER as the width shrinks, never NODE, STATE or ETCD', () => {
    const all = COLUMNS.map((c) => c.key);
    let dropped = 0;
    for (let width = 160; width >= 10; width--) {
      const keys = kept(width);
      // What is left is always "all columns but the first few of DROP_ORDER".
      const n = all.length - keys.length;
      expect(keys).toEqual(all.filter((k) => !DROP_ORDER.slice(0, n).includes(k)));
      expect(n).toBeGreaterThanOrEqual(dropped);
      dropped = n;
    }
    expect(kept(10)).toEqual(['node', 'state', 'etcd']);
    expect(kept(160)).toEqual(all);
  });

  it('shrinks the widest columns to their minimum before cutting the row', () => {
    const cols = fitColumns(rows, 30, 2);
    expect(cols.map((c) => c.key)).toEqual(['node', 'state', 'etcd']);
    expect(2 + cols.reduce((n, c) => n + c.width, 0) + 4).toBeLessThanOrEqual(30);
    const text = layoutRow(rows[0]!, cols, 30, '  ')
      .map((s) => s.text)
      .join('');
    expect(text).toBe('  coreos1  running  leader te…');
  });

  it('cuts a row that cannot fit at all, marking the cut', () => {
    const cols = fitColumns(rows, 12, 2);
    const text = layoutRow(rows[0]!, cols, 12, '> ')
      .map((s) => s.text)
      .join('');
    expect(text).toHaveLength(12);
    expect(text.endsWith('…')).toBe(true);
    // NODE shrank to its minimum, 6, before the row was cut.
    expect(text.startsWith('> coreo… ')).toBe(true);
  });

  it('cutSegments keeps tones and marks a cut at a boundary', () => {
    expect(cutSegments([{ text: 'abc', tone: 'bad' }, { text: 'def' }], 3)).toEqual([
      { text: 'ab…', tone: 'bad' },
    ]);
    expect(cutSegments([{ text: 'abc' }, { text: 'def' }], 6)).toEqual([{ text: 'abc' }, { text: 'def' }]);
    expect(truncate('coreos1', 4)).toBe('cor…');
    expect(truncate('coreos1', 0)).toBe('');
  });

  it('formats ages, memory and machine-ids', () => {
    expect([0, 3_400, 59_999, 60_000, 3_599_000, 3_600_000, 90_000_000, -5_000].map(formatAge)).toEqual([
      '0s',
      '3s',
      '59s',
      '1m',
      '59m',
      '1h',
      '1d',
      '0s',
    ]);
    expect(memCell({ totalMiB: 1987, availableMiB: 1578 })).toEqual({ text: '409/1987 MiB' });
    expect(memCell({ totalMiB: 1000, availableMiB: 50 }).tone).toBe('bad');
    expect(machineIdCell(MACHINE_IDS.coreos1, true, false)).toEqual({ text: 'b3a1c6f0e2d9!', tone: 'bad' });
    expect(machineIdCell(MACHINE_IDS.coreos1, true, true)).toEqual({ text: 'b3a1c6f0e2d9', tone: 'bad' });
    expect(machineIdCell(null, false, false)).toEqual({ text: '-' });
  });

  it('a node not running shows its state and dashes', () => {
    const off: NodeView = leaderLost.nodes[0]!;
    const row = nodeRow(off, ctx);
    expect(row.state).toEqual({ text: 'shut off', tone: 'warn' });
    for (const key of ['ip', 'machineId', 'etcd', 'docker', 'fleet', 'load', 'mem'] as const)
      expect(row[key].text).toBe('-');
  });
});

describe('status screen: hostile text', () => {
  it('an error with line breaks stays on one line: the table never grows past its rows', () => {
    const multi = {
      ...unreachable,
      nodes: unreachable.nodes.map((n) =>
        n.status.name === 'coreos3'
          ? {
              ...n,
              status: {
                ...n.status,
                lastError: 'etcd: exit code 1:\nError: context deadline exceeded\n\tat x\r\n',
              },
            }
          : n,
      ),
    };
    const { frame } = mount(multi, { columns: 100 });
    const errorLines = lines(frame()).filter((l) => l.includes('context deadline exceeded'));
    expect(errorLines).toHaveLength(1);
    expect(errorLines[0]).toMatch(/^coreos3: etcd: exit code 1: Error: context deadline exceeded at x\s*$/);
    expect(lines(frame()).some((l) => /^\s*at x/.test(l))).toBe(false);
  });
});
