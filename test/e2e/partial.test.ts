// Partial failure, targeted convergence and tolerant teardown on a 2-node lab, with real
// libvirt and real TCG guests. A `virsh` shim first on PATH (harness/virsh-shim.sh) refuses
// one call, as a libvirtd that cannot start a guest or rejects a definition would:
// - a start refused for one node: the other comes up healthy, the failure is named, the
//   next up starts exactly that node (R5);
// - a memory change: planned as a define only; a refused define keeps the old definition
//   and UUID, and the next up redefines in place without a reboot (R3);
// - a first-boot file change: planned and shown as a replace of that node only (R2);
// - down of a paused node and of a node undefined by hand, right after a libvirtd
//   restart, leaves nothing; a second down is fine (R10).
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { inventory, lab, virsh, writeLabfile } from './helpers.js';
import { bridgeLabfile } from '../support/e2e-labfile.js';
import { dacIds, expectedSecurityModel, seclabels } from '../support/confinement.js';
import { checkpointList, domainsOf, mutating, ok, shimmed, snapshotsOf } from './checkpoints.js';

const NAME = 'e2epart';
const P1 = `${NAME}-p1`;
const P2 = `${NAME}-p2`;
const labfile = (p2Extra = '') =>
  bridgeLabfile({
    name: NAME,
    services: '[docker]',
    nodes: `  - { name: p1, ip: 10.77.0.71 }\n  - { name: p2, ip: 10.77.0.72${p2Extra} }\n`,
  });
const file = writeLabfile(labfile());
const stateFile = path.join(process.env.LAB_STATE_DIR ?? '/var/lib/lab', NAME, 'private', 'state.json');

// The shim, as `virsh`, in a folder of its own put first on PATH for the runs that need it.
const shimDir = mkdtempSync(path.join(os.tmpdir(), 'lab-e2e-shim-'));
symlinkSync(path.join(import.meta.dirname, 'harness/virsh-shim.sh'), path.join(shimDir, 'virsh'));
const withShim = (v: Record<string, string>) => ({ ...v, PATH: `${shimDir}:${process.env.PATH ?? ''}` });

/**
 * lab run with the shims counting, from outside lab, every virsh call and every overlay
 * and seed it makes (checkpoints.ts); returns the run and its mutating calls. Its output
 * has no secret.
 */
async function counted(args: string[], env: Record<string, string> = {}) {
  const { r, calls } = await shimmed(args, env);
  const secret = readFileSync(path.join(path.dirname(stateFile), 'secret'), 'utf8').trim();
  expect(secret.length).toBeGreaterThan(20);
  for (const text of [r.stdout, r.stderr]) {
    expect(text).not.toContain(secret);
    expect(text).not.toMatch(/PRIVATE KEY/);
  }
  expect(calls.length, 'the shims saw lab run virsh').toBeGreaterThan(0);
  return { r, calls: mutating(calls) };
}

const bootId = async (node: string) => {
  const r = await lab(['ssh', node, '-f', file, '--', 'cat', '/proc/sys/kernel/random/boot_id']);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
};
const machineId = async (node: string) => {
  const r = await lab(['ssh', node, '-f', file, '--', 'cat', '/etc/machine-id']);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
};
const memoryKiB = async (domain: string) =>
  Number(/<memory unit='KiB'>(\d+)<\/memory>/.exec(await virsh(['dumpxml', '--inactive', domain]))?.[1]);
const state = () =>
  JSON.parse(readFileSync(stateFile, 'utf8')) as { nodes: Record<string, { step: string; error?: string }> };
const plan = async () => {
  const r = await lab(['plan', '--json', '-f', file]);
  expect(r.code, r.stderr).toBe(0);
  const p = JSON.parse(r.stdout) as { noop: boolean; nodes: { node: string; actions: string[] }[] };
  return Object.fromEntries(p.nodes.map((n) => [n.node, n.actions]));
};

describe('one node fails, the other is kept, the next up converges (2 TCG nodes)', () => {
  let baseline: Awaited<ReturnType<typeof inventory>>;
  let p1Boot = '';
  let p2Uuid = '';

  afterAll(async () => {
    await lab(['down', '--lab', NAME]);
  });

  it('a start refused for p2: p1 comes up healthy, exit 1 names p2, its step and cause; the state says failed', async () => {
    baseline = await inventory(NAME);
    const r = await lab(['up', '-f', file], { env: withShim({ VIRSH_SHIM_FAIL_START: P2 }) });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/^p1\s+healthy\b/m);
    expect(r.stdout).toMatch(/^p2\s+FAILED at boot\b/m);
    expect(r.stdout).toContain(`p2: boot: `);
    expect(r.stdout).toContain(`injected: start of ${P2} refused`);
    expect(r.stdout).toContain('lab is NOT healthy');
    expect(state().nodes.p2!.step).toBe('failed');
    expect(state().nodes.p1!.step).toBe('healthy');
    expect(await virsh(['domstate', P1])).toMatch(/running/);
    expect(await virsh(['domstate', P2])).toMatch(/shut off/);
    p1Boot = await bootId('p1');
    p2Uuid = (await virsh(['domuuid', P2])).trim();
  });

  it('the next lab up starts exactly p2 and leaves p1 running as it was', async () => {
    const { r, calls } = await counted(['up', '-f', file]);
    expect(r.code, r.stderr).toBe(0);
    expect(calls).toEqual([`start --domain ${P2}`]);
    expect(await bootId('p1')).toBe(p1Boot);
    expect((await virsh(['domuuid', P2])).trim()).toBe(p2Uuid);
    expect(state().nodes.p2!.step).toBe('healthy');
  });

  it('each guest is confined by the driver this host has, and the test says which: with DAC alone, QEMU runs as libvirt-qemu and only it reads the overlay and the seed; the base is read-only (S12)', async () => {
    const lsm = existsSync('/sys/kernel/security/lsm')
      ? readFileSync('/sys/kernel/security/lsm', 'utf8')
      : '';
    const model = expectedSecurityModel(lsm);
    process.stderr.write(`\nS12: security driver ${model} (kernel LSMs: ${lsm.trim() || 'none'})\n`);
    const qemuUser = Number(String((await execa('id', ['-u', 'libvirt-qemu'])).stdout).trim());
    expect(qemuUser).toBeGreaterThan(0);
    const ps = String((await execa('ps', ['-eo', 'uid=,args='])).stdout).split('\n');
    const disks = path.join(process.env.LAB_STATE_DIR ?? '/var/lib/lab', NAME, 'disks');
    for (const [node, domain] of [
      ['p1', P1],
      ['p2', P2],
    ] as const) {
      const labels = seclabels(await virsh(['dumpxml', domain]));
      expect(
        labels.find((l) => l.model === model),
        `${domain}: ${JSON.stringify(labels)}`,
      ).toMatchObject({
        type: 'dynamic',
        relabel: 'yes',
      });
      const dac = dacIds(labels.find((l) => l.model === 'dac')?.label);
      expect(dac?.uid).toBe(qemuUser);
      const qemu = ps.filter((l) => l.includes(`guest=${domain},`));
      expect(qemu).toHaveLength(1);
      expect(Number(qemu[0]!.trim().split(/\s+/)[0])).toBe(qemuUser);
      // What DAC gives: the guest's own files are QEMU's user's, 0600, while it runs.
      for (const f of [`${node}.qcow2`, `${node}-seed.iso`]) {
        const st = statSync(path.join(disks, f));
        expect([f, st.uid, st.mode & 0o777]).toEqual([f, qemuUser, 0o600]);
      }
    }
    const base = statSync(
      path.join(process.env.LAB_CACHE_DIR ?? '/var/cache/lab/images', 'debian-12-lab/disk.qcow2'),
    );
    expect(base.mode & 0o777).toBe(0o444);
  });

  it('checkpoint restore of p2 alone (no etcd on it): only p2 goes back, p1 runs on untouched', async () => {
    ok(await lab(['checkpoint', 'save', 'pbase', '-f', file]));
    for (const n of ['p1', 'p2'])
      ok(await lab(['ssh', n, '-f', file, '--', 'sudo', 'touch', '/var/tmp/after-pbase']));
    const r = await shimmed(['checkpoint', 'restore', 'pbase', 'p2', '-f', file]);
    ok(r.r);
    expect(domainsOf(r.calls, 'snapshot-revert')).toEqual([P2]);
    expect(domainsOf(r.calls, 'resume')).toEqual([P2]);
    const marker = (n: string) => lab(['ssh', n, '-f', file, '--', 'test', '-e', '/var/tmp/after-pbase']);
    expect((await marker('p2')).code).toBe(1);
    expect((await marker('p1')).code).toBe(0);
    expect(await bootId('p1')).toBe(p1Boot);
    expect(state().nodes.p2!.step).toBe('healthy');
  });

  it('a memory change is a define only; a refused define keeps the old definition, then one define in place, no reboot', async () => {
    writeFileSync(file, labfile(', memory: 640MiB'));
    expect(await plan()).toEqual({ p1: [], p2: ['define'] });
    const p2Boot = await bootId('p2');
    const refused = await lab(['up', '-f', file], { env: withShim({ VIRSH_SHIM_FAIL_DEFINE: P2 }) });
    expect(refused.code, refused.stderr).toBe(1);
    expect(refused.stdout).toMatch(/^p2\s+FAILED at define\b/m);
    expect(refused.stdout).toContain(`injected: define of ${P2} refused`);
    expect(refused.stdout).toMatch(/^p1\s+healthy\b/m);
    // Nothing was undefined first: the old definition, the same UUID, still running.
    expect(await memoryKiB(P2)).toBe(768 * 1024);
    expect((await virsh(['domuuid', P2])).trim()).toBe(p2Uuid);
    expect(await virsh(['domstate', P2])).toMatch(/running/);
    expect(state().nodes.p2!.step).toBe('failed');

    const { r, calls } = await counted(['up', '-f', file]);
    expect(r.code, r.stderr).toBe(0);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatch(/^define --file \S+$/);
    expect(await memoryKiB(P2)).toBe(640 * 1024);
    expect(await memoryKiB(P1)).toBe(768 * 1024);
    expect((await virsh(['domuuid', P2])).trim()).toBe(p2Uuid);
    // In place: the guest was not restarted (the new size applies at its next boot).
    expect(await bootId('p2')).toBe(p2Boot);
    expect(await bootId('p1')).toBe(p1Boot);

    const again = await lab(['up', '-f', file]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('nothing changed');
  });

  it('a first-boot file for p2 is planned as a replace of p2 only; it keeps its identity and p1 is untouched', async () => {
    const mid = await machineId('p2');
    const p2Boot = await bootId('p2');
    writeFileSync(
      file,
      labfile(
        `, memory: 640MiB, files: [{ path: /etc/lab-partial, content: "second version\\n", mode: '0644' }]`,
      ),
    );
    const p = await plan();
    expect(p.p1).toEqual([]);
    expect(p.p2![0]).toBe('replace');
    const r = await lab(['up', '-f', file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^p2\s+healthy\s+replace,/m);
    // The replace took p2's share of the checkpoint with its old overlay, and said so.
    expect(r.stderr).toMatch(/p2: checkpoint pbase no longer covers this node: its disk is re-created/);
    expect(await snapshotsOf(P2)).toEqual([]);
    expect(await snapshotsOf(P1)).toEqual(['lab-ckpt-pbase']);
    expect((await checkpointList(file)).checkpoints.map((c) => [c.name, c.stale])).toEqual([
      ['pbase', ['p2: its disk was re-created since (lab reset, or a replace)']],
    ]);
    const cat = await lab(['ssh', 'p2', '-f', file, '--', 'cat', '/etc/lab-partial']);
    expect(cat.stdout).toBe('second version\n');
    expect(await bootId('p2')).not.toBe(p2Boot);
    expect(await machineId('p2')).toBe(mid);
    expect((await virsh(['domuuid', P2])).trim()).toBe(p2Uuid);
    expect(await bootId('p1')).toBe(p1Boot);
  });

  it('libvirtd restarts during lab up, twice: before p2 is defined (no libvirt to answer) and after p2 started (reply lost): up rides both out and says so, p2 boots once (R24)', async () => {
    const pidOf = () => readFileSync(path.join(process.env.STATE ?? '', 'libvirtd.pid'), 'utf8').trim();
    const pidBefore = pidOf();
    writeFileSync(
      file,
      labfile(
        `, memory: 704MiB, files: [{ path: /etc/lab-partial, content: "second version\\n", mode: '0644' }]`,
      ),
    );
    await virsh(['destroy', P2]);
    expect(await plan()).toEqual({ p1: [], p2: ['define', 'start'] });
    const marks = mkdtempSync(path.join(os.tmpdir(), 'lab-e2e-marks-'));
    const { r, calls } = await counted(['up', '-f', file], {
      VIRSH_SHIM_RESTART_BEFORE_DEFINE: P2,
      VIRSH_SHIM_RESTART_AFTER_START: P2,
      VIRSH_SHIM_MARKS: marks,
    });
    expect(r.code, r.stderr).toBe(0);
    // The exact calls: the define asked until libvirt answered it, then the start asked
    // until libvirt said "already active"; no overlay, seed, destroy or undefine, and no
    // define after the start (a redo of the node's actions would show one).
    const shape = calls.map((c) => (c.startsWith('define --file ') ? 'define' : c));
    expect(shape.join(' | ')).toMatch(
      new RegExp(`^define( \\| define)* \\| start --domain ${P2}( \\| start --domain ${P2})+$`),
    );
    // Both restarts happened (the shim marks each), with two new daemons.
    expect(readdirSync(marks).sort()).toEqual(['restart-after-start', 'restart-before-define']);
    expect(pidOf()).not.toBe(pidBefore);
    // Lab said what happened and went on; the define found no libvirt and was asked again.
    expect(r.stderr).toMatch(
      /lost the connection to libvirt during virsh define \(.*Failed to connect socket/,
    );
    expect(r.stderr).toMatch(/libvirt answered virsh define again after \d/);
    expect(r.stderr).toMatch(
      /lost the connection to libvirt during virsh start \(.*End of file while reading data/,
    );
    expect(r.stderr).toMatch(/libvirt answered virsh start again after \d/);
    expect(r.stdout).toMatch(/^p2\s+healthy\s+define,start\b/m);
    expect(r.stdout).toMatch(/^p1\s+healthy\s+none\b/m);
    // The start that "failed" had started p2: the retry read "already active" as done,
    // so p2 booted once; libvirt runs one QEMU for it.
    const ps = String((await execa('ps', ['-eo', 'args='])).stdout).split('\n');
    expect(ps.filter((l) => l.includes(`guest=${P2},`))).toHaveLength(1);
    expect(await memoryKiB(P2)).toBe(704 * 1024);
    expect((await virsh(['domuuid', P2])).trim()).toBe(p2Uuid);
    expect(await bootId('p1')).toBe(p1Boot);
    expect(state().nodes.p2!.step).toBe('healthy');
    // Converged: the next up makes no mutating call.
    const again = await counted(['up', '-f', file]);
    expect(again.r.code, again.r.stderr).toBe(0);
    expect(again.calls).toEqual([]);
  });

  it('down of a paused node and a hand-undefined one, right after a libvirtd restart: nothing left; a second down is fine', async () => {
    await virsh(['suspend', P1]);
    // Undefined while running: libvirt keeps it as a transient domain, still the lab's.
    await virsh(['undefine', P2]);
    await execa('bash', [path.join(import.meta.dirname, 'harness/labns.sh'), 'restart-libvirtd'], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const down = await lab(['down', '-f', file]);
    expect(down.code, down.stderr).toBe(0);
    expect(await inventory(NAME)).toEqual(baseline);
    const again = await lab(['down', '-f', file]);
    expect(again.code, again.stderr).toBe(0);
    expect(await inventory(NAME)).toEqual(baseline);
  });
});
