import { mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../../lab/apply/locking.js';
import { StateWriter, readState, writeDurable, type LabState } from '../../../lab/store/state-file.js';

const sample = (): LabState => ({
  version: 1,
  serial: 0,
  lab: 't',
  uri: 'qemu:///system',
  updated: '2026-01-01T00:00:00.000Z',
  network: { mode: 'bridge', bridge: 'br0' },
  nodes: { n1: { domain: 't-n1', ip: '10.0.0.2', step: 'planned', updated: '' } },
});

describe('state file', () => {
  it('is written 0600 under any umask, keeps the previous version as .bak, leaves no temp file', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lab-state-'));
    const file = path.join(dir, 'state.json');
    const old = process.umask(0);
    try {
      const w = new StateWriter(file, sample());
      await w.update(() => {});
      await w.node('n1', { step: 'defined', configHash: 'abc' });
    } finally {
      process.umask(old);
    }
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const now = await readState(file);
    expect(now.source).toBe('file');
    expect(now.state!.serial).toBe(2);
    expect(now.state!.nodes.n1!.step).toBe('defined');
    const bak = JSON.parse(readFileSync(`${file}.bak`, 'utf8')) as LabState;
    expect(bak.serial).toBe(1);
    expect(readdirSync(dir).sort()).toEqual(['state.json', 'state.json.bak']);
  });

  it('a truncated or foreign file is never used: the backup, else nothing', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lab-state-'));
    const file = path.join(dir, 'state.json');
    await writeDurable(file, JSON.stringify({ ...sample(), serial: 4 }));
    await writeDurable(file, JSON.stringify({ ...sample(), serial: 5 }));
    writeFileSync(file, '{"version": 1, "serial": 6, "lab"'); // cut mid-write
    const r = await readState(file);
    expect(r.source).toBe('backup');
    expect(r.state!.serial).toBe(4);
    writeFileSync(`${file}.bak`, JSON.stringify({ ...sample(), version: 99 }));
    expect(await readState(file)).toEqual({ source: 'none' });
    writeFileSync(file, '');
    expect((await readState(file)).source).toBe('none');
  });

  it('serial updates from concurrent node steps are serialized: no lost update', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lab-state-'));
    const file = path.join(dir, 'state.json');
    const s = sample();
    s.nodes.n2 = { ...s.nodes.n1!, domain: 't-n2' };
    const w = new StateWriter(file, s);
    await Promise.all([w.node('n1', { step: 'started' }), w.node('n2', { step: 'failed', error: 'x' })]);
    const r = (await readState(file)).state!;
    expect(r.serial).toBe(2);
    expect([r.nodes.n1!.step, r.nodes.n2!.step, r.nodes.n2!.error]).toEqual(['started', 'failed', 'x']);
  });
});

describe('--lock-timeout durations', () => {
  it.each([
    ['0', 0],
    ['30', 30_000],
    ['30s', 30_000],
    ['10m', 600_000],
    ['1.5h', 5_400_000],
    ['250ms', 250],
  ])('%s is %d ms', (text, ms) => expect(parseDuration(text)).toBe(ms));
  it.each(['', 'soon', '-1s', '10 m', '1d'])('%j is refused', (text) =>
    expect(parseDuration(text)).toBeUndefined(),
  );
});
