// What confines a guest here, read from outside lab: the security driver the kernel and
// libvirt give (AppArmor or SELinux when loaded, else DAC alone) and the <seclabel>
// elements of a live domain XML. The e2e confinement check (S12) asserts what that
// driver gives; the AppArmor and SELinux label shapes are unit-tested on samples.
import { XMLParser } from 'fast-xml-parser';

export type SecurityModel = 'apparmor' | 'selinux' | 'dac';

/**
 * The model libvirt labels dynamic guests with, from the kernel's LSM list
 * (/sys/kernel/security/lsm, comma separated; empty or missing when none is loaded). Pure.
 */
export function expectedSecurityModel(lsmList: string): SecurityModel {
  const lsms = lsmList.split(',').map((s) => s.trim());
  if (lsms.includes('selinux')) return 'selinux';
  if (lsms.includes('apparmor')) return 'apparmor';
  return 'dac';
}

export interface Seclabel {
  type?: string;
  model?: string;
  relabel?: string;
  label?: string;
  imagelabel?: string;
}

/** The domain-level <seclabel> elements of a domain XML (not a disk's). Pure. */
export function seclabels(xml: string): Seclabel[] {
  const doc = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '@_',
    isArray: (name) => name === 'seclabel',
  }).parse(xml) as { domain?: { seclabel?: Record<string, unknown>[] } };
  return (doc.domain?.seclabel ?? []).map((s) => {
    const text = (k: string) =>
      typeof s[k] === 'string' || typeof s[k] === 'number' ? String(s[k]) : undefined;
    const out: Seclabel = {};
    for (const [k, v] of [
      ['type', s['@_type']],
      ['model', s['@_model']],
      ['relabel', s['@_relabel']],
      ['label', text('label')],
      ['imagelabel', text('imagelabel')],
    ] as const)
      if (typeof v === 'string') out[k] = v;
    return out;
  });
}

/** A DAC label `+UID:+GID` (or `UID:GID`) as numbers, or undefined. Pure. */
export function dacIds(label: string | undefined): { uid: number; gid: number } | undefined {
  const m = /^\+?(\d+):\+?(\d+)$/.exec(label ?? '');
  return m ? { uid: Number(m[1]), gid: Number(m[2]) } : undefined;
}
