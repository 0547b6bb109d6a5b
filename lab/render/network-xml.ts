import { XMLBuilder } from 'fast-xml-parser';
import type { LabSpec } from '../plan/model.js';
import { LAB_XMLNS } from './types.js';

/**
 * The libvirt network a managed lab owns: isolated (or NAT), the host on the gateway
 * address, and a DHCP reservation per node MAC as a fallback to the static config. Pure.
 */
export function renderNetworkXml(lab: LabSpec): string {
  const net = lab.network;
  if (net.mode !== 'managed' || !net.libvirtName || !net.hostIp)
    throw new Error('renderNetworkXml: not a managed network');
  const doc = {
    network: {
      name: net.libvirtName,
      metadata: { 'lab:network': { '@_xmlns:lab': LAB_XMLNS, lab: lab.name } },
      ...(net.forward === 'nat' ? { forward: { '@_mode': 'nat' } } : {}),
      bridge: { '@_name': net.bridge, '@_stp': 'off', '@_delay': '0' },
      ip: {
        '@_address': net.hostIp,
        '@_netmask': net.netmask,
        dhcp: {
          host: lab.nodes.map((n) => ({ '@_mac': n.mac, '@_name': n.name, '@_ip': n.ip })),
        },
      },
    },
  };
  const builder = new XMLBuilder({
    ignoreAttributes: false,
    attributeNamePrefix: '@_',
    format: true,
    indentBy: '  ',
    suppressEmptyNode: true,
  });
  return builder.build(doc);
}

/** Does `virsh net-dumpxml` output carry this lab's metadata? Pure. */
export function networkOwnedBy(xml: string, lab: string): boolean {
  const m = /<lab:network\b[^>]*>\s*<lab>([^<]*)<\/lab>/.exec(xml);
  return m !== null && m[1] === lab;
}
