import { etcdctlProfile } from './etcd.js';
import { staticNetworkFile } from './network-files.js';
import { etcdMemberUnit, updatesOffFile } from './units.js';
import type { ProvisioningBundle, ProvisioningRenderer, RenderInput } from './types.js';

/** The Ignition spec version when the template names none (Flatcar reads 3.4). */
export const DEFAULT_IGNITION_VERSION = '3.4.0';

/** An RFC 2397 data URL: Ignition's inline file contents. */
export function dataUrl(text: string): string {
  return `data:,${encodeURIComponent(text)}`;
}

interface IgnitionFile {
  path: string;
  mode: number;
  overwrite: boolean;
  contents: { source: string };
  user?: { name: string };
  group?: { name: string };
}

function file(path: string, content: string, mode: number, owner?: string): IgnitionFile {
  const [user, group] = owner?.split(':') ?? [];
  return {
    path,
    mode,
    overwrite: true,
    contents: { source: dataUrl(content) },
    ...(user ? { user: { name: user } } : {}),
    ...(group ? { group: { name: group } } : {}),
  };
}

function config({ lab, node, keys, legacy }: RenderInput): Record<string, unknown> {
  const net = staticNetworkFile(lab, node);
  const files: IgnitionFile[] = [
    file('/etc/hostname', `${node.name}\n`, 0o644),
    file(net.path, net.content, net.mode),
    // The host key lab pinned before boot: sshd generates only the keys that are missing.
    file('/etc/ssh/ssh_host_ed25519_key', keys.hostKey.privateKey, 0o600),
    file('/etc/ssh/ssh_host_ed25519_key.pub', `${keys.hostKey.publicKey}\n`, 0o644),
  ];
  const updates = updatesOffFile(node);
  if (updates) files.push(file(updates.path, updates.content, 0o644));
  const units: Record<string, unknown>[] = [];
  const etcd = node.services.includes('etcd') ? node.template.services.etcd : undefined;
  if (etcd) {
    files.push(file('/etc/profile.d/lab-etcd.sh', etcdctlProfile(lab), 0o644));
    const unit = etcdMemberUnit(lab, node, legacy ?? false);
    units.push({
      name: unit.name,
      enabled: true,
      ...(unit.contents ? { contents: unit.contents } : {}),
      ...(unit.dropin ? { dropins: [{ name: unit.dropin.name, contents: unit.dropin.contents }] } : {}),
    });
  }
  const docker = node.services.includes('docker') ? node.template.services.docker : undefined;
  if (docker) units.push({ name: docker.unit, enabled: true });
  for (const f of node.files) files.push(file(f.path, f.content, parseInt(f.mode ?? '0644', 8), f.owner));
  return {
    ignition: { version: node.template.provisioning.ignitionVersion ?? DEFAULT_IGNITION_VERSION },
    passwd: { users: [{ name: lab.ssh.user, sshAuthorizedKeys: keys.authorizedKeys }] },
    storage: { files },
    systemd: { units },
  };
}

/**
 * Ignition spec v3 JSON for Flatcar and Fedora CoreOS, delivered over QEMU fw_cfg. It runs
 * on the first boot only: a changed config is planned as a replace. Pure.
 */
export const renderIgnition: ProvisioningRenderer = (input): ProvisioningBundle => ({
  dialect: 'ignition',
  delivery: 'fwcfg',
  files: { 'config.ign': `${JSON.stringify(config(input), null, 2)}\n` },
});
