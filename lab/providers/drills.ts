/**
 * libvirt's verbs for failure drills: an ACPI shutdown, a power-off, a NIC's link
 * state. Each is idempotent where a lost reply may be asked again (R24).
 */
import type { Virsh } from './virsh.js';

export type LinkState = 'up' | 'down';

/**
 * `virsh -q domif-getlink DOMAIN MAC` prints the interface and its state (`52:54:… up`,
 * or `vnet0 down`): the state is the last word. Pure.
 */
export function parseLinkState(stdout: string): LinkState | undefined {
  const last = stdout.trim().split(/\s+/).at(-1);
  return last === 'up' || last === 'down' ? last : undefined;
}

/** The link state of a running domain's NIC (by MAC), or undefined when libvirt cannot say. */
export async function linkState(virsh: Virsh, domain: string, mac: string): Promise<LinkState | undefined> {
  const r = await virsh.call(['domif-getlink', '--domain', domain, '--interface', mac], 30_000, [1]);
  return r.exitCode === 0 ? parseLinkState(r.stdout) : undefined;
}

/** Sets the link of a running domain's NIC (the live domain only: a new boot has it up). */
export async function setLink(virsh: Virsh, domain: string, mac: string, state: LinkState): Promise<void> {
  await virsh.call(['domif-setlink', '--domain', domain, '--interface', mac, '--state', state], 30_000);
}

/** Asks the guest to power down through ACPI (its power button); returns at once. */
export async function acpiShutdown(virsh: Virsh, domain: string): Promise<void> {
  await virsh.call(['shutdown', '--domain', domain, '--mode', 'acpi'], 60_000, undefined, {
    settled: /domain is not running/i,
  });
}
