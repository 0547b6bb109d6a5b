import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { LabContext } from '../../../lab/apply/context.js';
import type { NodeResult } from '../../../lab/apply/converge-node.js';
import { openState, recordResults, unwaitedNodes } from '../../../lab/apply/run-state.js';
import type { LabPlan } from '../../../lab/plan/plan.js';
import type { DesiredNode } from '../../../lab/render/node.js';
import { LabDir } from '../../../lab/store/lab-dir.js';
import type { LabState } from '../../../lab/store/state-file.js';
import { labSpec } from '../../support/lab-spec.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'lab-run-state-'));
afterAll(() => {
  delete process.env.LAB_STATE_DIR;
});

function context(name: string): LabContext {
  process.env.LAB_STATE_DIR = root;
  const lab = labSpec({ name });
  const dir = new LabDir(lab.name);
  mkdirSync(dir.private, { recursive: true, mode: 0o700 });
  const events: unknown[] = [];
  return {
    lab,
    dir,
    virsh: { uri: 'qemu:///system' },
    onEvent: (e: unknown) => events.push(e),
  } as unknown as LabContext;
}
const desiredOf = (ctx: LabContext) => ctx.lab.nodes.map((spec) => ({ spec }) as DesiredNode);
const planOf = (actions: Record<string, string[]>): LabPlan => ({
  network: [],
  leaving: [],
  nodes: Object.entries(actions).map(([node, a]) => ({ node, actions: a as never, reasons: [] })),
});
const read = (ctx: LabContext) => JSON.parse(readFileSync(ctx.dir.stateFile, 'utf8')) as LabState;

describe('the state file across one lab up', () => {
  it('opens from the plan: an untouched node keeps its recorded step and hash, a planned one starts over', async () => {
    const ctx = context('rs1');
    const stale = path.join(ctx.dir.private, 'state.json.4242.tmp');
    writeFileSync(stale, 'half a write');
    // What a SIGKILL mid-write leaves of the keys, a seed and an overlay: swept as well.
    const keyTmp = path.join(ctx.dir.private, 'known_hosts.4243.tmp');
    writeFileSync(keyTmp, 'half');
    mkdirSync(ctx.dir.disks, { recursive: true });
    const staging = path.join(ctx.dir.disks, 'a-seed.iso.staging-Ab12Cd');
    mkdirSync(staging);
    writeFileSync(path.join(staging, 'user-data'), 'x');
    const partial = path.join(ctx.dir.disks, 'a.qcow2.partial');
    writeFileSync(partial, 'x');
    const kept = path.join(ctx.dir.disks, 'a.qcow2');
    writeFileSync(kept, 'the disk');
    const before: LabState = {
      version: 1,
      serial: 7,
      lab: 'rs1',
      uri: 'qemu:///system',
      updated: 'x',
      network: { mode: 'bridge', bridge: 'br0' },
      nodes: {
        a: { domain: 'rs1-a', ip: '10.9.0.2', configHash: 'ha', step: 'healthy', updated: 'x' },
        b: { domain: 'rs1-b', ip: '10.9.0.3', configHash: 'hb', step: 'healthy', updated: 'x' },
      },
    };
    writeFileSync(ctx.dir.stateFile, JSON.stringify(before));
    const writer = await openState(ctx, planOf({ a: [], b: ['define', 'start'] }), desiredOf(ctx));
    expect([stale, keyTmp, staging, partial].filter((f) => existsSync(f))).toEqual([]);
    expect(readFileSync(kept, 'utf8')).toBe('the disk');
    const s = read(ctx);
    expect(s.serial).toBe(8);
    expect(s.nodes.a).toMatchObject({ step: 'healthy', configHash: 'ha' });
    expect(s.nodes.b).toMatchObject({ step: 'planned', configHash: 'hb' });
    expect(writer.current.serial).toBe(8);
  });

  it('closes with each outcome; a node --no-wait left alone keeps its step; the unwaited are found', async () => {
    const ctx = context('rs2');
    const plan = planOf({ a: ['start'], b: [] });
    const writer = await openState(ctx, plan, desiredOf(ctx));
    await writer.node('b', { step: 'started' });
    expect([...unwaitedNodes(plan, writer)]).toEqual(['b']);
    // Waited for by a later up, then a --no-wait run that does not touch it: still healthy.
    await writer.node('b', { step: 'healthy' });
    expect([...unwaitedNodes(plan, writer)]).toEqual([]);
    const results: NodeResult[] = [
      { node: 'a', ok: false, actions: ['start'], failedStep: 'boot', error: 'refused' },
      { node: 'b', ok: true, actions: [], waited: false },
    ];
    await recordResults(writer, results);
    const s = read(ctx);
    expect(s.nodes.a).toMatchObject({ step: 'failed', error: 'refused' });
    expect(s.nodes.b!.step).toBe('healthy');
    await recordResults(writer, [
      { node: 'a', ok: true, actions: ['start'], waited: false },
      { node: 'b', ok: true, actions: [] },
    ]);
    expect(read(ctx).nodes.a!.step).toBe('started');
    expect(read(ctx).nodes.b!.step).toBe('healthy');
  });
});
