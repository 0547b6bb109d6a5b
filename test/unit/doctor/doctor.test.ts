// lab doctor's look at the host, in process: a fake virsh first on PATH answers as libvirt
// 9.0 does (capabilities, or its words for a refusal) and logs its argv; the KVM test
// guest is handed in. libvirt is asked once, never again, whatever it answers.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { doctor, findProgram, labTarget } from '../../../lab/doctor/doctor.js';
import type { KvmProbe } from '../../../lab/providers/host.js';
import { fakePath, writeProgram } from './fake-path.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'lab-doctor-'));
const log = path.join(work, 'virsh-argv');
const reply = path.join(work, 'reply');

// Its own PATH: the test's PATH holds only the programs doctor looks for.
const FAKE_VIRSH = `#!/bin/sh
PATH=/usr/bin:/bin
printf '%s\\n' "$*" >> ${JSON.stringify(log)}
[ -f ${JSON.stringify(`${reply}.out`)} ] && cat ${JSON.stringify(`${reply}.out`)}
[ -f ${JSON.stringify(`${reply}.err`)} ] && cat ${JSON.stringify(`${reply}.err`)} >&2
exit "$(cat ${JSON.stringify(`${reply}.code`)})"
`;

function answer(code: number, out?: string, err?: string) {
  for (const ext of ['out', 'err']) rmSync(`${reply}.${ext}`, { force: true });
  writeFileSync(`${reply}.code`, String(code));
  if (out !== undefined) writeFileSync(`${reply}.out`, out);
  if (err !== undefined) writeFileSync(`${reply}.err`, err);
}
const calls = () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []);

const capabilities = (...types: string[]) =>
  `<capabilities>\n  <guest>\n    <os_type>hvm</os_type>\n    <arch name='x86_64'>\n${types
    .map((t) => `      <domain type='${t}'/>`)
    .join('\n')}\n    </arch>\n  </guest>\n</capabilities>\n`;

const KVM_RAN: KvmProbe = { usable: true, reason: 'a test guest ran under KVM in 80 ms', ms: 80 };
const NO_KVM: KvmProbe = { usable: false, reason: '/dev/kvm does not exist', ms: 0 };

let savedEnv: NodeJS.ProcessEnv;
let bin: string;
beforeAll(() => {
  savedEnv = { ...process.env };
  bin = fakePath(work, ['virsh', 'mmdebstrap']);
  writeProgram(bin, 'virsh', FAKE_VIRSH);
  process.env.PATH = bin;
  process.env.LAB_STATE_DIR = path.join(work, 'state');
  process.env.LAB_CACHE_DIR = path.join(work, 'cache', 'images');
  process.env.LIBVIRT_DEFAULT_URI = 'qemu:///system';
});
afterAll(() => {
  process.env = savedEnv;
  rmSync(work, { recursive: true, force: true });
});
beforeEach(() => rmSync(log, { force: true }));

const byId = async (...args: Parameters<typeof doctor>) =>
  new Map((await doctor(...args)).checks.map((c) => [c.id, c]));

describe('libvirt, asked once', () => {
  it('answers: KVM is judged as lab up judges it, from the one capabilities call', async () => {
    answer(0, capabilities('qemu', 'kvm'));
    const checks = await byId({}, { probeKvm: () => Promise.resolve(KVM_RAN) });
    expect(calls()).toEqual(['-q -c qemu:///system capabilities']);
    expect(checks.get('libvirt')).toMatchObject({
      status: 'ok',
      detail: 'answers; x86_64 guests: kvm, qemu',
    });
    expect(checks.get('kvm')).toMatchObject({ status: 'ok', detail: KVM_RAN.reason });
  });

  it('offers no KVM: a warning, TCG', async () => {
    answer(0, capabilities('qemu'));
    const checks = await byId({}, { probeKvm: () => Promise.resolve(KVM_RAN) });
    expect(checks.get('kvm')).toMatchObject({ status: 'warn' });
    expect(checks.get('kvm')!.detail).toMatch(
      /^not usable: libvirt does not offer KVM here; guests run under TCG/,
    );
  });

  it('offers no x86_64 guest at all: KVM fails, with the package', async () => {
    answer(0, capabilities());
    const checks = await byId({}, { probeKvm: () => Promise.resolve(KVM_RAN) });
    expect(checks.get('kvm')).toMatchObject({ status: 'fail', package: 'qemu-system-x86' });
  });

  it('a restarting libvirtd is not waited for: one call, then the test guest alone', async () => {
    answer(
      1,
      '',
      "error: failed to connect to the hypervisor\nerror: Failed to connect socket to '/run/libvirt/libvirt-sock': Connection refused\n",
    );
    const started = performance.now();
    const checks = await byId({}, { probeKvm: () => Promise.resolve(NO_KVM) });
    expect(performance.now() - started).toBeLessThan(2000);
    expect(calls()).toHaveLength(1);
    expect(checks.get('libvirt')).toMatchObject({ status: 'fail' });
    expect(checks.get('libvirt')!.detail).toMatch(/^not reachable: .*Connection refused$/);
    expect(checks.get('kvm')!.detail).toContain('(libvirt not asked: it did not answer)');
  });

  it('refuses this user: says to join the libvirt group', async () => {
    answer(
      1,
      '',
      "error: failed to connect to the hypervisor\nerror: Failed to connect socket to '/var/run/libvirt/libvirt-sock': Permission denied\n",
    );
    const checks = await byId({}, { probeKvm: () => Promise.resolve(NO_KVM) });
    expect(checks.get('libvirt')!.detail).toMatch(/^not allowed: /);
    expect(checks.get('libvirt')!.hint).toContain('libvirt group');
  });

  it('a URI that turns checks off is refused before any call, as by every command (exit 2)', async () => {
    await expect(
      byId({ uri: 'qemu+tcp://h/system' }, { probeKvm: () => Promise.resolve(NO_KVM) }),
    ).rejects.toThrow(/^refusing libvirt URI qemu\+tcp:\/\/h\/system: /);
    expect(calls()).toEqual([]);
  });
});

describe('with a Labfile', () => {
  function labfile(network: string, extra = ''): string {
    const dir = mkdtempSync(path.join(work, 'lab-'));
    const file = path.join(dir, 'Labfile.yaml');
    writeFileSync(
      file,
      `name: doc\ntemplate: debian-12-lab\nnetwork: ${network}\n${extra}defaults: { memory: 512MiB }\nnodes:\n  - { name: a, ip: 10.9.0.2 }\n  - { name: b, ip: 10.9.0.3 }\n`,
    );
    return file;
  }

  it('needs mmdebstrap for an image not built yet, dnsmasq for a managed network', async () => {
    answer(0, capabilities('qemu'));
    const checks = await byId({ labfile: labfile('{ mode: managed, cidr: 10.9.0.0/24 }') });
    expect(checks.get('program.mmdebstrap')).toMatchObject({ status: 'fail', package: 'mmdebstrap' });
    expect(checks.get('program.mmdebstrap')!.detail).toContain('debian-12-lab image must be built');
    expect(checks.get('bridge')!.status).toBe('skip');
  });

  it('sizes memory by TCG when KVM does not run guests, disk by the nodes not made yet', async () => {
    answer(0, capabilities('qemu', 'kvm'));
    const file = labfile('{ mode: bridge, bridge: labdocnobr1, cidr: 10.9.0.0/24 }');
    const tcg = await byId({ labfile: file }, { probeKvm: () => Promise.resolve(NO_KVM) });
    expect(tcg.get('memory')!.detail).toMatch(/^(not enough: )?2 node\(s\) need 1536 MiB \(under TCG/);
    const kvm = await byId({ labfile: file }, { probeKvm: () => Promise.resolve(KVM_RAN) });
    expect(kvm.get('memory')!.detail).toMatch(
      /^(not enough: )?2 node\(s\) need 1024 MiB, \d+ MiB available$/,
    );
    expect(kvm.get('disk')!.detail).toMatch(/ free under .*; 2 new node\(s\) need at least 1024 MiB$/);
    // A node whose disk exists is not new.
    const disks = path.join(process.env.LAB_STATE_DIR!, 'doc', 'disks');
    mkdirSync(disks, { recursive: true });
    writeFileSync(path.join(disks, 'a.qcow2'), '');
    const again = await byId({ labfile: file }, { probeKvm: () => Promise.resolve(KVM_RAN) });
    expect(again.get('disk')!.detail).toMatch(/; 1 new node\(s\) need at least 512 MiB$/);
    rmSync(path.join(process.env.LAB_STATE_DIR!, 'doc'), { recursive: true });
  });

  it('a Labfile that does not validate fails its check, and the others still run', async () => {
    answer(0, capabilities('qemu'));
    const file = labfile('{ mode: bridge, cidr: 10.9.0.0/24 }', 'bogus: 1\n');
    const checks = await byId({ labfile: file });
    expect(checks.get('labfile')).toMatchObject({
      status: 'fail',
      hint: `lab validate -f ${file} lists every problem`,
    });
    expect(checks.get('labfile')!.detail).toMatch(
      new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: `),
    );
    expect(checks.get('program.qemu-img')!.status).toBe('ok');
  });

  it('--lab NAME takes the Labfile and URI its state recorded', async () => {
    const file = labfile('{ mode: managed, cidr: 10.9.0.0/24 }');
    const priv = path.join(process.env.LAB_STATE_DIR!, 'doc', 'private');
    mkdirSync(priv, { recursive: true });
    const state = {
      version: 1,
      serial: 1,
      lab: 'doc',
      uri: 'qemu:///session',
      updated: '',
      network: { mode: 'managed', bridge: 'x' },
      nodes: {},
    };
    writeFileSync(path.join(priv, 'state.json'), JSON.stringify({ ...state, labfile: file }));
    expect(await labTarget('doc')).toEqual({ labfile: file, recordedUri: 'qemu:///session' });
    writeFileSync(path.join(priv, 'state.json'), JSON.stringify(state));
    const t = await labTarget('doc');
    expect(t).toMatchObject({ recordedUri: 'qemu:///session', noLabfile: { status: 'warn' } });
    answer(0, capabilities('qemu'));
    await doctor(t);
    expect(calls()).toEqual(['-q -c qemu:///session capabilities']);
    rmSync(path.join(process.env.LAB_STATE_DIR!, 'doc'), { recursive: true });
  });
});

describe('findProgram', () => {
  it('looks in PATH order, needs the execute bit, skips relative folders', () => {
    const a = path.join(work, 'a');
    const b = path.join(work, 'b');
    writeProgram(b, 'tool', '#!/bin/sh\n');
    mkdirSync(a, { recursive: true });
    writeFileSync(path.join(a, 'tool'), ''); // not executable
    expect(findProgram(['tool'], [a, b].join(path.delimiter))).toBe(path.join(b, 'tool'));
    expect(findProgram(['tool'], ['relative', a].join(path.delimiter))).toBeUndefined();
    expect(findProgram(['none', 'tool'], b)).toBe(path.join(b, 'tool'));
    expect(findProgram(['tool'], '', [b])).toBe(path.join(b, 'tool'));
  });
});
