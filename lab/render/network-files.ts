import type { LabSpec, NodeSpec } from '../plan/model.js';

/**
 * The node's static address as a systemd-networkd unit, the file the CoreOS walkthrough
 * wrote by hand (`10-static.network`). Matched by the template's NIC name.
 */
export function networkdUnit(lab: LabSpec, node: NodeSpec): string {
  let out = `[Match]\nName=${node.template.nic}\n\n[Network]\nAddress=${node.ip}/${lab.network.prefix}\n`;
  if (lab.network.gateway) out += `Gateway=${lab.network.gateway}\n`;
  for (const dns of lab.network.dns) out += `DNS=${dns}\n`;
  // A static lab address with no router: waiting for IPv6 router adverts only delays boot.
  out += 'IPv6AcceptRA=no\n';
  return out;
}

/** The same address as a NetworkManager keyfile (Fedora CoreOS), bound to the node's MAC. */
export function networkManagerKeyfile(lab: LabSpec, node: NodeSpec): string {
  let out = `[connection]\nid=lab-${node.template.nic}\ntype=ethernet\nautoconnect=true\n\n`;
  out += `[ethernet]\nmac-address=${node.mac.toUpperCase()}\n\n`;
  out += `[ipv4]\nmethod=manual\naddress1=${node.ip}/${lab.network.prefix}${lab.network.gateway ? `,${lab.network.gateway}` : ''}\n`;
  if (lab.network.dns.length > 0) out += `dns=${lab.network.dns.join(';')};\n`;
  out += '\n[ipv6]\nmethod=disabled\n';
  return out;
}

/** Where each renderer writes the network config, by the template's network stack. */
export function staticNetworkFile(
  lab: LabSpec,
  node: NodeSpec,
): { path: string; content: string; mode: number } {
  return node.template.network === 'networkmanager'
    ? {
        path: `/etc/NetworkManager/system-connections/lab-${node.template.nic}.nmconnection`,
        content: networkManagerKeyfile(lab, node),
        mode: 0o600, // NetworkManager ignores keyfiles that others can read
      }
    : { path: '/etc/systemd/network/10-static.network', content: networkdUnit(lab, node), mode: 0o644 };
}
