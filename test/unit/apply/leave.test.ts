// A node the Labfile no longer names: found by every trace it leaves (state record, the
// lab's metadata on its domain, its files), planned, and removed in order (etcd, domain,
// files, record last), against a model of libvirt that logs each mutating call.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { LabContext } from '../../../lab/apply/context.js';
import { leaveNodes } from '../../../lab/apply/leave.js';
import { Serial, type MemberRun } from '../../../lab/apply/membership.js';
import { findLeavingNodes, nodeOfFile } from '../../../lab/apply/observe.js';
import { openState } from '../../../lab/apply/run-state.js';
import type { LabSpec } from '../../../lab/plan/model.js';
import { isNoop, memberChanges, planLab, planLeaving } from '../../../lab/plan/plan.js';
import { renderNode } from '../../../lab/render/node.js';
import { LabDir } from '../../../lab/store/lab-dir.js';
import type { LabState } from '../../../lab/store/state-file.js';
import { labSpec } from '../../support/lab-spec.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'lab-leave-'));
process.env.LAB_STATE_DIR = root;
afterAll(() => {
  delete process.env.LAB_STATE_DIR;
});

const NODES: Record<string, string> = { a: '10.9.0.2', b: '10.9.0.3', c: '10.9.0.4', d: '10.9.0.5' };
const specOf = (name: string, nodes: string[], etcd = true) =>
  labSpec({
    name,
    extra: etcd ? 'services: [etcd]\n' : 'services: [docker]\n',
    nodes: nodes.map((n) => `  - { name: ${n}, ip: ${NODES[n] ?? '10.9.0.9'} }\n`).join(''),
  });

/** libvirt as lab sees it: domains with their XML and state; each change is logged. */
function libvirt(domains: Record<string, { state: string; xml: string }>) {
  const log: string[] = [];
  const virsh = {
    uri: 'qemu:///system',
    listDomainStates: () => Promise.resolve(new Map(Object.entries(domains).map(([n, d]) => [n, d.state]))),
    dumpXml: (n: string) => Promise.resolve(domains[n]?.xml),
    destroy: (n: string) => {
      log.push(`destroy ${n}`);
      domains[n]!.state = 'shut off';
      return Promise.resolve();
    },
    undefine: (n: string) => {
      log.push(`undefine ${n}`);
      delete domains[n];
      return Promise.resolve();
    },
  };
  return { virsh, log, domains };
}

/** A lab folder with the files a lab of `all` made, libvirt holding its domains, and its state. */
function madeLab(name: string, all: LabSpec, extra: Record<string, { state: string; xml: string }> = {}) {
  const dir = new LabDir(name);
  for (const d of [dir.private, dir.disks, dir.console]) mkdirSync(d, { recursive: true });
  const secret = Buffer.alloc(32, 7);
  const domains: Record<string, { state: string; xml: string }> = { ...extra };
  const state: LabState = {
    version: 1,
    serial: 3,
    lab: name,
    uri: 'qemu:///system',
    updated: 'x',
    network: { mode: 'bridge', bridge: 'br0' },
    nodes: {},
  };
  for (const node of all.nodes) {
    const paths = dir.nodePaths(node, {});
    for (const f of [paths.disk, paths.seed!, paths.console]) writeFileSync(f, node.name);
    domains[node.domain] = {
      state: 'running',
      xml: renderNode({ lab: all, node, paths, secret, type: 'qemu' }).xml,
    };
    state.nodes[node.name] = { domain: node.domain, ip: node.ip, step: 'healthy', updated: 'x' };
  }
  writeFileSync(dir.stateFile, JSON.stringify(state));
  return { dir, state, ...libvirt(domains) };
}

function context(lab: LabSpec, dir: LabDir, virsh: unknown, events: unknown[] = []): LabContext {
  return { lab, dir, virsh, onEvent: (e: unknown) => events.push(e) } as unknown as LabContext;
}

/** A member run in which no node answers (a lab without etcd nodes needs none). */
const silent = (): MemberRun => ({
  serial: new Serial(),
  linkTo: () => Promise.resolve(undefined),
  expectedPeers: [],
  fresh: false,
  removed: new Map(),
  leaving: [],
  settleMs: 0,
});

describe('nodeOfFile', () => {
  it('reads the node back from the names LabDir gives its files', () => {
    expect(nodeOfFile('disks', 'd.qcow2')).toBe('d');
    expect(nodeOfFile('disks', 'd-seed.iso')).toBe('d');
    expect(nodeOfFile('disks', 'x-seed-seed.iso')).toBe('x-seed');
    expect(nodeOfFile('disks', 'd.ign')).toBe('d');
    expect(nodeOfFile('console', 'd.log')).toBe('d');
    expect(nodeOfFile('disks', 'd.qcow2.partial')).toBeUndefined();
    expect(nodeOfFile('disks', 'notes.txt')).toBeUndefined();
  });
});

describe('findLeavingNodes', () => {
  it("finds a dropped node by its record, its domain's metadata and its files; never a domain without the metadata", async () => {
    const four = specOf('lv1', ['a', 'b', 'c', 'd']);
    const foreign = { state: 'running', xml: "<domain type='qemu'><name>lv1-x</name></domain>" };
    const m = madeLab('lv1', four, { 'lv1-x': foreign });
    const three = specOf('lv1', ['a', 'b', 'c']);
    const found = await findLeavingNodes(context(three, m.dir, m.virsh), m.state);
    expect(found).toEqual([
      {
        node: 'd',
        domain: 'lv1-d',
        state: 'running',
        ip: '10.9.0.5',
        files: [
          path.join(m.dir.console, 'd.log'),
          path.join(m.dir.disks, 'd-seed.iso'),
          path.join(m.dir.disks, 'd.qcow2'),
        ].sort(),
      },
    ]);
    // Without the state file (lost): the metadata still finds it, with its address.
    expect((await findLeavingNodes(context(three, m.dir, m.virsh), undefined))[0]).toMatchObject({
      node: 'd',
      domain: 'lv1-d',
      ip: '10.9.0.5',
    });
    // Nothing leaves a lab that still names every node.
    expect(await findLeavingNodes(context(four, m.dir, m.virsh), m.state)).toEqual([]);
  });

  it('a domain of that name with another lab’s metadata is not taken; the files in this lab’s folder are', async () => {
    const two = specOf('lv2', ['a', 'b']);
    const m = madeLab('lv2', two);
    const other = specOf('lv2-b', ['a']);
    // The other lab "lv2-b" has a node "a": its domain is lv2-b-a, which looks like lv2's "b-a".
    const xml = renderNode({
      lab: other,
      node: other.nodes[0]!,
      paths: m.dir.nodePaths(other.nodes[0]!, {}),
      secret: Buffer.alloc(32, 1),
      type: 'qemu',
    }).xml;
    m.domains['lv2-b-a'] = { state: 'running', xml };
    const one = specOf('lv2', ['a']);
    const found = await findLeavingNodes(context(one, m.dir, m.virsh), m.state);
    expect(found.map((f) => [f.node, f.domain ?? '-'])).toEqual([['b', 'lv2-b']]);
  });
});

describe('planLeaving', () => {
  const three = specOf('p', ['a', 'b', 'c']);
  const d = { node: 'd', domain: 'p-d', state: 'running', ip: '10.9.0.5', files: ['/x/d.qcow2'] };
  it('out of etcd, destroyed, undefined, files deleted; after the nodes, as its address is nobody else’s', () => {
    const [p] = planLeaving(three, [d]);
    expect(p!.actions).toEqual(['leave-etcd', 'destroy', 'undefine', 'delete-files']);
    expect(p!.first).toBe(false);
  });
  it('a rename that keeps the address goes first; a stopped domain is not destroyed; files alone are deleted', () => {
    const renamed = specOf('p', ['a', 'b', 'd']);
    const c = { ...d, node: 'c', domain: 'p-c', ip: '10.9.0.5', state: 'shut off' };
    const [p] = planLeaving(renamed, [c]);
    expect(p!.actions).toEqual(['leave-etcd', 'undefine', 'delete-files']);
    expect(p!.first).toBe(true);
    const [f] = planLeaving(three, [{ node: 'e', state: 'missing', files: ['/x/e.log'] }]);
    expect(f!.actions).toEqual(['delete-files']);
  });
  it('a lab with a leaving node is no no-op, and lab plan shows it leaving etcd', () => {
    const plan = planLab(three, [], new Map(), undefined, [d]);
    expect(isNoop(plan)).toBe(false);
    expect(memberChanges(three, plan, new Map()).get('d')).toBe('leave');
    expect(isNoop(planLab(three, [], new Map(), undefined, []))).toBe(true);
  });
});

describe('leaveNodes', () => {
  it('without etcd: destroy, undefine, files, and the state record last; a second run has nothing left', async () => {
    const two = specOf('lv3', ['a', 'b'], false);
    const m = madeLab('lv3', two);
    const one = specOf('lv3', ['a'], false);
    const events: { kind: string; node?: string; status?: string }[] = [];
    const ctx = context(one, m.dir, m.virsh, events);
    const plan = planLab(one, [], new Map(), undefined, await findLeavingNodes(ctx, m.state));
    const state = await openState(ctx, plan, []);
    expect(state.current.nodes.b?.step).toBe('leaving');
    const r = await leaveNodes(ctx, plan.leaving, state, silent());
    // Asked all the same (the Labfile no longer says what ran on b): no member answers, and
    // none stays that could lose a quorum.
    expect(r).toEqual([
      {
        node: 'b',
        ok: true,
        member: 'not-a-member',
        actions: ['leave-etcd', 'destroy', 'undefine', 'delete-files'],
      },
    ]);
    expect(m.log).toEqual(['destroy lv3-b', 'undefine lv3-b']);
    expect(existsSync(path.join(m.dir.disks, 'b.qcow2'))).toBe(false);
    expect(existsSync(path.join(m.dir.disks, 'a.qcow2'))).toBe(true);
    const onDisk = JSON.parse(readFileSync(m.dir.stateFile, 'utf8')) as LabState;
    expect(Object.keys(onDisk.nodes)).toEqual([]);
    expect(events.filter((e) => e.node === 'b').map((e) => e.status)).toEqual(['start', 'done']);
    expect(await findLeavingNodes(ctx, onDisk)).toEqual([]);
  });

  it('an etcd lab whose members do not answer: the node is kept whole (domain, files, record)', async () => {
    const two = specOf('lv4', ['a', 'b']);
    const m = madeLab('lv4', two);
    const one = specOf('lv4', ['a']);
    const ctx = context(one, m.dir, m.virsh);
    const plan = planLab(one, [], new Map(), undefined, await findLeavingNodes(ctx, m.state));
    const state = await openState(ctx, plan, []);
    const [r] = await leaveNodes(ctx, plan.leaving, state, silent());
    expect(r!.ok).toBe(false);
    expect(r!.error).toMatch(/no etcd member answers \(a, nor b\): lab cannot tell whether b is a member/);
    expect(m.log).toEqual([]);
    expect(existsSync(path.join(m.dir.disks, 'b.qcow2'))).toBe(true);
    expect(state.current.nodes.b?.step).toBe('leaving');
  });
});
