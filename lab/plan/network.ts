import type { Labfile } from '../labfile/schema.js';
import { sha256 } from './hash.js';
import { intToIp, ipToInt, isHostIn, netmaskOf, parseCidr, type Cidr } from './ipv4.js';
import type { NetworkSpec } from './model.js';
import type { Report } from './report.js';

/** The Labfile's network section. */
type LabfileNetwork = Labfile['network'];

/** The network as the node checks need it: its CIDR, and the host's own address on it. */
export interface CheckedNetwork {
  cidr: Cidr;
  /** The host's address on a managed network; undefined in bridge mode. */
  hostIp: string | undefined;
}

/** Checks the network section (CIDR, gateway, bridge mode's needs), reporting each problem. */
export function checkNetwork(net: LabfileNetwork, report: Report): CheckedNetwork {
  const cidr = parseCidr(net.cidr);
  if (cidr.network !== ipToInt(net.cidr.split('/')[0]!)) {
    report.at(
      ['network', 'cidr'],
      `cidr ${net.cidr} has host bits set; did you mean ${intToIp(cidr.network)}/${cidr.prefix}?`,
    );
  }
  if (cidr.prefix > 30)
    report.at(['network', 'cidr'], `cidr ${net.cidr} is too small for a lab (use /30 or larger)`);
  if (net.gateway !== undefined && !isHostIn(net.gateway, cidr)) {
    report.at(
      ['network', 'gateway'],
      `gateway ${net.gateway} is not a host address in network.cidr ${net.cidr}`,
    );
  }
  if (net.mode === 'bridge' && net.bridge === undefined) {
    report.at(
      ['network'],
      'bridge mode needs network.bridge: the name of an existing host bridge such as br0',
      'mode',
    );
  }
  if (net.mode === 'bridge' && net.forward !== undefined) {
    report.at(['network', 'forward'], 'forward applies to managed networks only');
  }
  // A managed network gives the host the gateway address (or the first host address).
  const hostIp = net.mode === 'managed' ? (net.gateway ?? intToIp(cidr.first)) : undefined;
  return { cidr, hostIp };
}

/** The lab's NetworkSpec from its checked network section, every default filled in. */
export function networkSpec(lab: string, net: LabfileNetwork, checked: CheckedNetwork): NetworkSpec {
  const { cidr, hostIp } = checked;
  return {
    mode: net.mode,
    bridge: net.bridge ?? defaultBridge(lab),
    ...(net.mode === 'managed' ? { libvirtName: `lab-${lab}`, hostIp } : {}),
    cidr: `${intToIp(cidr.network)}/${cidr.prefix}`,
    prefix: cidr.prefix,
    netmask: netmaskOf(cidr.prefix),
    // On a managed network the host is the way out (NAT) or at least the only router.
    ...(net.gateway || hostIp ? { gateway: net.gateway ?? hostIp } : {}),
    dns: net.dns ?? [],
    forward: net.forward ?? 'none',
  };
}

/** The bridge a managed network gets when the Labfile names none: short (IFNAMSIZ) and per lab. */
export function defaultBridge(lab: string): string {
  return `lab${sha256(lab).slice(0, 8)}`;
}
