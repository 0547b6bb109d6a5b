import { XMLParser } from 'fast-xml-parser';
import { networkUuid } from '../plan/identity.js';
import type { LabSpec } from '../plan/model.js';
import { LAB_XMLNS } from './types.js';
import { EXACT_XML, buildXml } from './xml.js';

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
      uuid: networkUuid(lab.name),
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
  return buildXml(doc);
}

/**
 * Does `virsh net-dumpxml` output carry this lab's metadata: a `network` element in lab's
 * namespace (whatever its prefix) whose `lab` child is exactly `lab`, entities decoded? Pure.
 */
export function networkOwnedBy(xml: string, lab: string): boolean {
  const doc = new XMLParser(EXACT_XML).parse(xml) as { network?: unknown };
  const metadata = isRecord(doc.network) ? doc.network.metadata : undefined;
  if (!isRecord(metadata)) return false;
  return Object.entries(metadata).some(([tag, el]) => {
    const [prefix, local] = tag.includes(':') ? tag.split(':', 2) : ['', tag];
    if (local !== 'network' || !isRecord(el)) return false;
    if (el[prefix ? `@_xmlns:${prefix}` : '@_xmlns'] !== LAB_XMLNS) return false;
    const owner = el.lab;
    return (isRecord(owner) ? (owner['#text'] ?? '') : owner) === lab;
  });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
