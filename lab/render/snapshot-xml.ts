import { buildXml } from './xml.js';

/**
 * The libvirt snapshot of one node for a lab checkpoint. With neither `<memory>` nor
 * `<disks>` given, libvirt takes an internal snapshot of a running domain with its
 * memory (the qcow2 overlay keeps both), which libvirt 9.0 can also revert. Pure.
 */
export function renderSnapshotXml(input: { name: string; lab: string; checkpoint: string }): string {
  return buildXml({
    domainsnapshot: {
      name: input.name,
      description: `lab checkpoint ${input.checkpoint} of lab ${input.lab}`,
    },
  });
}
