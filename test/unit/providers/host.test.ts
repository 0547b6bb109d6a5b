// R25: KVM vs TCG is detected and stated. The detector is fed `virsh capabilities` XML
// (shaped like libvirt 9.0's for qemu:///system) and a KVM probe result; it must pick the
// domain type and say so in exactly one line when it falls back to TCG.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HostError } from '../../../lab/errors.js';
import { chooseAccelerator, type KvmProbe } from '../../../lab/providers/host.js';
import { parseCapabilityDomainTypes } from '../../../lab/providers/virsh.js';

function guest(arch: string, emulator: string, types: string[]): string {
  return `  <guest>
    <os_type>hvm</os_type>
    <arch name='${arch}'>
      <wordsize>64</wordsize>
      <emulator>${emulator}</emulator>
      <machine maxCpus='255'>pc-i440fx-7.2</machine>
      <machine canonical='pc-i440fx-7.2' maxCpus='255'>pc</machine>
${types.map((t) => `      <domain type='${t}'/>`).join('\n')}
    </arch>
    <features>
      <acpi default='on' toggle='yes'/>
      <apic default='on' toggle='no'/>
    </features>
  </guest>
`;
}
function capabilities(...guests: string[]): string {
  return `<capabilities>

  <host>
    <uuid>0f6d8a4e-9a3c-4d3e-8f1e-6d2b5c7a9e10</uuid>
    <cpu>
      <arch>x86_64</arch>
      <model>Skylake-Client-IBRS</model>
      <vendor>Intel</vendor>
      <topology sockets='1' dies='1' cores='2' threads='1'/>
    </cpu>
    <migration_features><live/></migration_features>
  </host>

${guests.join('\n')}
</capabilities>
`;
}

const CAPS = {
  'kvm and qemu offered': capabilities(
    guest('i686', '/usr/bin/qemu-system-i386', ['qemu', 'kvm']),
    guest('x86_64', '/usr/bin/qemu-system-x86_64', ['qemu', 'kvm']),
  ),
  // KVM offered for i686 only must not count for an x86_64 guest.
  'only qemu offered': capabilities(
    guest('i686', '/usr/bin/qemu-system-i386', ['qemu', 'kvm']),
    guest('x86_64', '/usr/bin/qemu-system-x86_64', ['qemu']),
  ),
  'no x86_64 guest': capabilities(guest('aarch64', '/usr/bin/qemu-system-aarch64', ['qemu'])),
  'no guest at all': capabilities(),
};

/** A Virsh whose `capabilities()` parses the given XML, as the real one parses virsh's output. */
const virshWith = (xml: string) => ({ capabilities: () => Promise.resolve(parseCapabilityDomainTypes(xml)) });
const USABLE: KvmProbe = { usable: true, reason: 'a test guest ran under KVM in 40 ms', ms: 40 };
const UNUSABLE: KvmProbe = {
  usable: false,
  reason: 'a test guest under KVM did not finish within 4 s',
  ms: 4000,
};

/** A probe that records whether it ran. */
function probeOf(result: KvmProbe) {
  const p = { calls: 0, fn: () => (p.calls++, Promise.resolve(result)) };
  return p;
}
const oneLine = (w: string | undefined) => {
  expect(typeof w).toBe('string');
  expect(w!.split('\n')).toHaveLength(1);
  expect(w!.trim()).toBe(w);
};

describe('R25 parseCapabilityDomainTypes', () => {
  it.each([
    ['kvm and qemu offered', ['kvm', 'qemu']],
    ['only qemu offered', ['qemu']],
    ['no x86_64 guest', []],
    ['no guest at all', []],
  ] as const)('%s: %j', (name, types) => {
    expect(parseCapabilityDomainTypes(CAPS[name])).toEqual(types);
  });
});

describe('R25 chooseAccelerator', () => {
  it('kvm and qemu offered, KVM runs a guest: kvm, and nothing to say', async () => {
    const probe = probeOf(USABLE);
    expect(await chooseAccelerator(virshWith(CAPS['kvm and qemu offered']), 'auto', probe.fn)).toEqual({
      type: 'kvm',
    });
    expect(probe.calls).toBe(1);
  });

  it('kvm and qemu offered, KVM does not run a guest: qemu (TCG), said in one line with the reason', async () => {
    const probe = probeOf(UNUSABLE);
    const c = await chooseAccelerator(virshWith(CAPS['kvm and qemu offered']), 'auto', probe.fn);
    expect(c.type).toBe('qemu');
    oneLine(c.warning);
    expect(c.warning).toBe(
      'KVM is not usable (a test guest under KVM did not finish within 4 s): guests run under TCG software emulation (much slower)',
    );
    expect(probe.calls).toBe(1);
  });

  it('only qemu offered: qemu (TCG), one line, and no probe (libvirt cannot run KVM anyway)', async () => {
    const probe = probeOf(USABLE);
    const c = await chooseAccelerator(virshWith(CAPS['only qemu offered']), 'auto', probe.fn);
    expect(c.type).toBe('qemu');
    oneLine(c.warning);
    expect(c.warning).toMatch(/^KVM is not available through libvirt on this host: guests run under TCG/);
    expect(probe.calls).toBe(0);
  });

  it.each(['no x86_64 guest', 'no guest at all'] as const)(
    '%s: a HostError that says what to install, for auto and kvm alike',
    async (name) => {
      for (const wanted of ['auto', 'kvm'] as const) {
        const probe = probeOf(USABLE);
        const err = await chooseAccelerator(virshWith(CAPS[name]), wanted, probe.fn).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(HostError);
        expect((err as HostError).message).toMatch(/no x86_64 guest/);
        expect((err as HostError).hint).toMatch(/qemu-system-x86/);
        expect(probe.calls).toBe(0);
      }
    },
  );

  it('accelerator: kvm is obeyed without a probe; warned in one line when libvirt does not offer it', async () => {
    const probe = probeOf(UNUSABLE);
    expect(await chooseAccelerator(virshWith(CAPS['kvm and qemu offered']), 'kvm', probe.fn)).toEqual({
      type: 'kvm',
    });
    const c = await chooseAccelerator(virshWith(CAPS['only qemu offered']), 'kvm', probe.fn);
    expect(c.type).toBe('kvm');
    oneLine(c.warning);
    expect(probe.calls).toBe(0);
  });

  it('accelerator: tcg asks libvirt nothing and says nothing', async () => {
    const probe = probeOf(USABLE);
    let asked = 0;
    const virsh = { capabilities: () => (asked++, Promise.resolve(['kvm', 'qemu'])) };
    expect(await chooseAccelerator(virsh, 'tcg', probe.fn)).toEqual({ type: 'qemu' });
    expect([asked, probe.calls]).toEqual([0, 0]);
  });

  it('the fallback line stays one line whatever the probe reports', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: 'grapheme-ascii', maxLength: 40 }),
        fc.constantFrom('\n', '\r\n', ' \n  '),
        async (a, nl) => {
          const reason = `${a}${nl}${a}`;
          const c = await chooseAccelerator(virshWith(CAPS['kvm and qemu offered']), 'auto', () =>
            Promise.resolve({ usable: false, reason, ms: 1 }),
          );
          expect(c.type).toBe('qemu');
          expect(c.warning).not.toMatch(/[\r\n]/);
        },
      ),
      { seed: 25, numRuns: 100 },
    );
  });
});
