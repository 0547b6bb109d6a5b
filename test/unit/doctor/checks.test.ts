// lab doctor's judgments, from facts handed in: programs and their packages, libvirt's
// answer, KVM, the bridge, memory and disk, and the text a person reads.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  bridgeCheck,
  diskCheck,
  kvmCheck,
  labNeeds,
  libvirtCheck,
  memoryCheck,
  parseMemAvailableMiB,
  programCheck,
  PROGRAMS,
  report,
  TCG_CACHE_MIB,
  type InterfaceFacts,
  type LabNeeds,
} from '../../../lab/doctor/checks.js';
import { formatReport } from '../../../lab/doctor/format.js';
import { BRIDGE_NET, labSpec, MANAGED_NET } from '../../support/lab-spec.js';

const root = path.join(import.meta.dirname, '../../..');
const spec = (id: string) => PROGRAMS.find((p) => p.id === id)!;

describe('programs and their packages', () => {
  it.each([
    ['qemu-img', 'qemu-utils'],
    ['qemu-system', 'qemu-system-x86'],
    ['virsh', 'libvirt-clients'],
    ['iso-tool', 'xorriso'],
    ['gpgv', 'gpgv'],
    ['xz', 'xz-utils'],
    ['bzip2', 'bzip2'],
    ['mmdebstrap', 'mmdebstrap'],
    ['dnsmasq', 'dnsmasq-base'],
    ['ip', 'iproute2'],
  ])('%s comes from %s', (id, pkg) => {
    expect(spec(id).package).toBe(pkg);
  });

  it('names only packages scripts/install-host-deps.sh installs', () => {
    const script = readFileSync(path.join(root, 'scripts/install-host-deps.sh'), 'utf8');
    const installed = /^pkgs=\(([^)]*)\)/m.exec(script)![1]!.split(/\s+/).filter(Boolean);
    for (const p of PROGRAMS) expect(installed, p.id).toContain(p.package);
  });

  it('takes either ISO tool, xorriso first', () => {
    expect(spec('iso-tool').programs).toEqual(['xorriso', 'genisoimage']);
  });

  const noLabfile: LabNeeds = {};
  const needsBoth: LabNeeds = {
    build: "this Labfile's debian-12-lab image must be built",
    managed: 'managed',
  };
  const needsNone: LabNeeds = { build: false, managed: false };
  it.each([
    // id, needs, found, status
    ['qemu-img', noLabfile, '/usr/bin/qemu-img', 'ok'],
    ['qemu-img', noLabfile, undefined, 'fail'],
    ['qemu-img', needsNone, undefined, 'fail'],
    ['gpgv', noLabfile, undefined, 'fail'],
    ['mmdebstrap', noLabfile, undefined, 'warn'],
    ['mmdebstrap', needsNone, undefined, 'skip'],
    ['mmdebstrap', needsBoth, undefined, 'fail'],
    ['mmdebstrap', needsBoth, '/usr/bin/mmdebstrap', 'ok'],
    ['dnsmasq', noLabfile, undefined, 'warn'],
    ['dnsmasq', needsNone, undefined, 'skip'],
    ['dnsmasq', needsBoth, undefined, 'fail'],
  ] as const)('%s with needs %j, found at %s: %s', (id, needs, found, status) => {
    const c = programCheck(spec(id), found, needs);
    expect(c.status).toBe(status);
    expect(c.id).toBe(`program.${id}`);
    if (status === 'ok') expect(c.detail).toBe(found);
    else expect(c.package).toBe(spec(id).package);
  });

  it('says why a sometimes-needed program is or is not needed', () => {
    expect(programCheck(spec('mmdebstrap'), undefined, {}).detail).toBe(
      'mmdebstrap not found on PATH (needed only to build images)',
    );
    expect(programCheck(spec('mmdebstrap'), undefined, needsBoth).detail).toBe(
      "mmdebstrap not found on PATH: this Labfile's debian-12-lab image must be built",
    );
    expect(programCheck(spec('iso-tool'), undefined, {})).toMatchObject({
      detail: 'xorriso or genisoimage not found on PATH',
      hint: 'genisoimage (package genisoimage) does as well',
    });
  });

  it('needs mmdebstrap for an image still to build, dnsmasq for a managed network', () => {
    expect(labNeeds(undefined, [])).toEqual({});
    expect(labNeeds(labSpec({ network: BRIDGE_NET }), [])).toEqual({ build: false, managed: false });
    expect(labNeeds(labSpec({ network: MANAGED_NET }), ['debian-12-lab'])).toEqual({
      build: "this Labfile's debian-12-lab image must be built",
      managed: 'this Labfile has a managed network',
    });
  });
});

describe('libvirt', () => {
  const uri = 'qemu:///system';
  it.each([
    [
      'a daemon that is not running',
      "error: failed to connect to the hypervisor\nerror: Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory\n",
      "not reachable: Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory",
      /^start libvirtd/,
    ],
    [
      'a socket this user may not open',
      "error: failed to connect to the hypervisor\nerror: Failed to connect socket to '/var/run/libvirt/libvirt-sock': Permission denied\n",
      "not allowed: Failed to connect socket to '/var/run/libvirt/libvirt-sock': Permission denied",
      /libvirt group/,
    ],
    [
      'polkit saying no',
      "error: failed to connect to the hypervisor\nerror: authentication unavailable: no polkit agent available to authenticate action 'org.libvirt.unix.manage'\n",
      "not allowed: authentication unavailable: no polkit agent available to authenticate action 'org.libvirt.unix.manage'",
      /libvirt group/,
    ],
  ])('%s: fail, and what to do', (_, stderr, detail, hint) => {
    const c = libvirtCheck(uri, { kind: 'failed', error: stderr, timedOut: false }, 2000);
    expect(c).toMatchObject({ id: 'libvirt', what: `libvirt at ${uri}`, status: 'fail', detail });
    expect(c.hint).toMatch(hint);
  });

  it('a daemon that does not answer in time', () => {
    expect(libvirtCheck(uri, { kind: 'failed', error: '', timedOut: true }, 2000)).toMatchObject({
      status: 'fail',
      detail: 'not reachable: no answer within 2 s',
    });
  });

  it('an answer, a refused URI, no virsh', () => {
    expect(libvirtCheck(uri, { kind: 'answered', domainTypes: ['kvm', 'qemu'] }, 2000)).toMatchObject({
      status: 'ok',
      detail: 'answers; x86_64 guests: kvm, qemu',
    });
    expect(
      libvirtCheck(uri, { kind: 'refused', error: 'refusing libvirt URI x', hint: 'h' }, 2000),
    ).toMatchObject({ status: 'fail', hint: 'h' });
    expect(libvirtCheck(uri, { kind: 'no-virsh' }, 2000).status).toBe('skip');
  });
});

describe('KVM', () => {
  const usable = {
    kind: 'probed',
    usable: true,
    reason: 'a test guest ran under KVM in 80 ms',
    libvirtAsked: true,
  } as const;
  const unusable = { ...usable, usable: false, reason: '/dev/kvm does not exist' };
  it.each([
    [usable, 'auto', 'ok'],
    [unusable, 'auto', 'warn'],
    [unusable, 'kvm', 'fail'],
    [unusable, 'tcg', 'ok'],
    [{ kind: 'not-asked', reason: 'not tried' } as const, 'auto', 'skip'],
    [{ kind: 'error', error: 'libvirt offers no x86_64 guest' } as const, 'auto', 'fail'],
  ] as const)('%j with accelerator %s: %s', (found, wanted, status) => {
    expect(kvmCheck(found, wanted).status).toBe(status);
  });

  it('says when libvirt was not asked, and what TCG costs', () => {
    expect(kvmCheck({ ...unusable, libvirtAsked: false }, 'auto').detail).toBe(
      'not usable: /dev/kvm does not exist (libvirt not asked: it did not answer); guests run under TCG software emulation (much slower)',
    );
  });
});

describe('bridge', () => {
  const net = labSpec({ network: '{ mode: bridge, bridge: br7, cidr: 10.9.0.0/24 }' }).network;
  const up: InterfaceFacts = { exists: true, bridge: true, adminUp: true, operstate: 'up' };
  it.each([
    [up, 'ok', 'a bridge, up'],
    [{ ...up, operstate: 'unknown' }, 'ok', 'a bridge, unknown'],
    [{ ...up, operstate: 'down' }, 'warn', /^up, but no port of it is up/],
    [{ ...up, adminUp: false, operstate: 'down' }, 'fail', 'bridge br7 is down'],
    [{ ...up, bridge: false }, 'fail', 'br7 exists but is not a bridge'],
    [
      { exists: false, bridge: false, adminUp: false, operstate: 'unknown' },
      'fail',
      'bridge br7 does not exist on this host',
    ],
  ] as const)('%j: %s', (facts, status, detail) => {
    const c = bridgeCheck(net, facts);
    expect(c).toMatchObject({ id: 'bridge', what: 'bridge br7', status });
    expect(c.detail).toMatch(detail);
  });

  it('leaves a managed network alone: lab makes its bridge', () => {
    expect(bridgeCheck(labSpec({ network: MANAGED_NET }).network, undefined).status).toBe('skip');
  });
});

describe('memory', () => {
  const nodes = [{ memoryMiB: 768 }, { memoryMiB: 1024 }];
  it('counts the nodes RAM, and the translation cache of each under TCG', () => {
    expect(memoryCheck(nodes, { tcg: false, availableMiB: 1792, existing: 0 })).toMatchObject({
      status: 'ok',
      detail: '2 node(s) need 1792 MiB, 1792 MiB available',
    });
    expect(memoryCheck(nodes, { tcg: true, availableMiB: 1792, existing: 0 })).toMatchObject({
      status: 'fail',
      detail: `not enough: 2 node(s) need ${1792 + 2 * TCG_CACHE_MIB} MiB (under TCG, 256 MiB of translation cache each), 1792 MiB available`,
    });
    expect(memoryCheck(nodes, { tcg: true, availableMiB: 2304, existing: 0 }).status).toBe('ok');
  });

  it('only warns when some nodes exist already (their memory may be in use)', () => {
    expect(memoryCheck(nodes, { tcg: false, availableMiB: 100, existing: 1 }).status).toBe('warn');
    expect(memoryCheck(nodes, { tcg: false, availableMiB: undefined, existing: 0 }).status).toBe('skip');
  });

  it('reads MemAvailable from /proc/meminfo', () => {
    expect(
      parseMemAvailableMiB('MemTotal:       16316412 kB\nMemFree:  1 kB\nMemAvailable:    8158206 kB\n'),
    ).toBe(7966);
    expect(parseMemAvailableMiB('MemTotal: 1 kB\n')).toBeUndefined();
  });
});

describe('disk', () => {
  const MiB = 1024 ** 2;
  it.each([
    [3, 1536 * MiB, 'ok'],
    [3, 1535 * MiB, 'fail'],
    [0, 0, 'ok'],
  ])('%i new nodes, %i bytes free: %s', (newNodes, freeBytes, status) => {
    expect(diskCheck({ under: '/var/lib/lab', freeBytes, newNodes, reserveBytes: 512 * MiB }).status).toBe(
      status,
    );
  });
});

describe('the text', () => {
  it('a line per check, the fix below a failure, the counts, one apt-get line', () => {
    const r = report([
      {
        id: 'program.qemu-img',
        what: 'qemu-img',
        status: 'fail',
        detail: 'qemu-img not found on PATH',
        package: 'qemu-utils',
      },
      { id: 'program.xz', what: 'xz', status: 'fail', detail: 'xz not found on PATH', package: 'xz-utils' },
      { id: 'program.virsh', what: 'virsh', status: 'ok', detail: '/usr/bin/virsh' },
      { id: 'kvm', what: 'KVM', status: 'warn', detail: 'not usable' },
      { id: 'program.ip', what: 'ip', status: 'skip', detail: 'ip not found', package: 'iproute2' },
    ]);
    expect(r.ok).toBe(false);
    expect(formatReport(r)).toBe(
      [
        'FAIL  qemu-img: qemu-img not found on PATH',
        '      fix: apt-get install qemu-utils',
        'FAIL  xz: xz not found on PATH',
        '      fix: apt-get install xz-utils',
        'ok    virsh: /usr/bin/virsh',
        'warn  KVM: not usable',
        'skip  ip: ip not found',
        'FAIL: 1 ok, 2 failed, 1 warning(s), 1 skipped',
        'to install what is missing: apt-get install qemu-utils xz-utils',
        '',
      ].join('\n'),
    );
  });

  it('ok with warnings and skips', () => {
    const r = report([{ id: 'kvm', what: 'KVM', status: 'warn', detail: 'x', hint: 'h' }]);
    expect(r.ok).toBe(true);
    expect(formatReport(r)).toBe(
      'warn  KVM: x\n      hint: h\nok: 0 ok, 0 failed, 1 warning(s), 0 skipped\n',
    );
  });

  it('keeps control characters out of the terminal', () => {
    const r = report([{ id: 'labfile', what: 'Labfile', status: 'fail', detail: 'a\u001b[31mb' }]);
    expect(formatReport(r)).not.toContain('\u001b');
  });
});
