import { describe, expect, it } from 'vitest';
import { dacIds, expectedSecurityModel, seclabels } from '../../support/confinement.js';

// Live XML as libvirt 9.0 writes it for a dynamic label, one per driver.
const APPARMOR = `<domain type='kvm' id='3'><name>lab-n1</name>
  <seclabel type='dynamic' model='apparmor' relabel='yes'>
    <label>libvirt-4c1f2c0e-7f5b-4a8e-9d3c-0b1e2f3a4b5c</label>
    <imagelabel>libvirt-4c1f2c0e-7f5b-4a8e-9d3c-0b1e2f3a4b5c</imagelabel>
  </seclabel>
  <seclabel type='dynamic' model='dac' relabel='yes'><label>+64055:+108</label><imagelabel>+64055:+108</imagelabel></seclabel>
</domain>`;
const SELINUX = `<domain type='kvm'><name>lab-n1</name>
  <devices><disk type='file'><source file='/x.qcow2'><seclabel model='selinux' relabel='no'/></source></disk></devices>
  <seclabel type='dynamic' model='selinux' relabel='yes'>
    <label>system_u:system_r:svirt_t:s0:c392,c662</label>
    <imagelabel>system_u:object_r:svirt_image_t:s0:c392,c662</imagelabel>
  </seclabel>
</domain>`;
const DAC = `<domain type='qemu' id='1'><name>lab-n1</name>
  <seclabel type='dynamic' model='dac' relabel='yes'><label>+64055:+107</label><imagelabel>+64055:+107</imagelabel></seclabel>
</domain>`;

describe('confinement, as read from outside lab', () => {
  it('the model follows the loaded LSMs: SELinux, else AppArmor, else DAC alone', () => {
    expect(expectedSecurityModel('lockdown,capability,yama,apparmor')).toBe('apparmor');
    expect(expectedSecurityModel('capability,selinux,bpf')).toBe('selinux');
    expect(expectedSecurityModel('capability,yama')).toBe('dac');
    expect(expectedSecurityModel('')).toBe('dac');
  });

  it("reads the domain's seclabels (not a disk's) for each driver", () => {
    expect(seclabels(APPARMOR)).toEqual([
      {
        type: 'dynamic',
        model: 'apparmor',
        relabel: 'yes',
        label: 'libvirt-4c1f2c0e-7f5b-4a8e-9d3c-0b1e2f3a4b5c',
        imagelabel: 'libvirt-4c1f2c0e-7f5b-4a8e-9d3c-0b1e2f3a4b5c',
      },
      { type: 'dynamic', model: 'dac', relabel: 'yes', label: '+64055:+108', imagelabel: '+64055:+108' },
    ]);
    expect(seclabels(SELINUX).map((s) => [s.model, s.label])).toEqual([
      ['selinux', 'system_u:system_r:svirt_t:s0:c392,c662'],
    ]);
    expect(seclabels(DAC)).toEqual([
      { type: 'dynamic', model: 'dac', relabel: 'yes', label: '+64055:+107', imagelabel: '+64055:+107' },
    ]);
    expect(seclabels('<domain><name>x</name></domain>')).toEqual([]);
  });

  it('a DAC label is the uid and gid QEMU runs as', () => {
    expect(dacIds('+64055:+107')).toEqual({ uid: 64055, gid: 107 });
    expect(dacIds('107:108')).toEqual({ uid: 107, gid: 108 });
    expect(dacIds('libvirt-4c1f')).toBeUndefined();
    expect(dacIds(undefined)).toBeUndefined();
  });
});
